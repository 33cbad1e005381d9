r"""Command line: train the LLM2Rec item encoder, build a model bundle from a preset (with the raw backbone or a
trained encoder), compare methods, or check that the backbone generates sensible text. This module only parses
and dispatches: the pipelines are train_encoder.py, bundle.py, evaluate.py, tune.py and backbone.py.

    python -m training.llm2rec.cli train --preset cpu \
        --datasets ../shared/data/amazon-games ../shared/data/movielens-small
    python -m training.llm2rec.cli bundle --preset quick --encoder runs/cpu \
        --datasets ../shared/data/amazon-games --out bundles/llm2rec-cpu
    python -m training.llm2rec.cli bundle --preset quick --datasets ../shared/data/amazon-games --out bundles/quick
    python -m training.llm2rec.cli generate --prompt "What is the capital of France?"
    python -m training.llm2rec.cli evaluate --out-of-domain my-data --source mine=bundle:bundles/quick \
        --methods popularity id-sasrec mine-sasrec          (training/llm2rec/evaluate.py has the whole protocol)
    python -m training.llm2rec.cli tune --dataset my-data --method id-sasrec --grid learning_rate=1e-3,3e-4
"""

import argparse
import sys
from pathlib import Path

import torch

from . import evaluate as evaluation
from . import presets as bundle_presets
from . import quality_report
from . import train_config
from . import tune as tuning
from .backbone import generate
from .bundle import build_bundle
from .config import ConfigError
from .data import DataError
from .train_encoder import dry_run, train as train_encoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.llm2rec.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    bundle = commands.add_parser("bundle", help="train and write a model bundle")
    bundle.add_argument("--preset", choices=sorted(bundle_presets.PRESETS), required=True)
    bundle.add_argument("--datasets", nargs="+", required=True, help="dataset directories in the shared layout")
    bundle.add_argument("--out", type=Path, required=True, help="bundle directory (replaced if it exists)")
    bundle.add_argument("--no-cache", action="store_true", help="do not read or write cached catalogue embeddings")
    bundle.add_argument("--encoder", type=Path, help="use the item encoder trained by `train` in this run directory "
                                                     "(e.g. runs/cpu) instead of the preset's raw backbone")
    bundle.add_argument("--config", type=Path, help="JSON or TOML file overriding preset fields")
    bundle.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override one preset field, e.g. --set epochs=2 (repeatable)")
    training = commands.add_parser("train", help="LLM2Rec embedding training: CSFT, MNTP, SimCSE (resumable)",
                                   description="Runs the stages in order into OUT/<stage>/, skipping finished "
                                               "stages and resuming an interrupted one from its checkpoint.")
    training.add_argument("--preset", choices=sorted(train_config.PRESETS), required=True)
    training.add_argument("--datasets", nargs="+", required=True, help="dataset directories in the shared layout")
    training.add_argument("--out", type=Path, help="run directory (default runs/<preset>)")
    training.add_argument("--config", type=Path, help="JSON or TOML file overriding preset fields")
    training.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                          help="override one field, e.g. --set csft.steps=200 (repeatable)")
    training.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this long (resume later)")
    training.add_argument("--report-dir", type=Path, help="also copy the run record and loss plots here")
    training.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core); on a "
                                                      "busy shared machine 1 thread is steadier and often faster")
    training.add_argument("--dry-run", action="store_true", help="check config, data and one batch per stage on a "
                                                                 "tiny model of the preset's architecture; no training")
    ev = commands.add_parser("evaluate", help="compare methods under the leave-one-out protocol (resumable)",
                             description=evaluation.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--in-domain", nargs="*", default=[], metavar="DIR",
                    help="datasets the embedding models were trained on")
    ev.add_argument("--out-of-domain", nargs="*", default=[], metavar="DIR",
                    help="datasets the embedding models never saw (the sequence model trains on them)")
    ev.add_argument("--zero-shot", nargs="*", default=[], metavar="DIR",
                    help="datasets evaluated with a sequence model trained on the --in-domain mix only")
    ev.add_argument("--zero-shot-train", nargs="*", default=[], metavar="DIR",
                    help="the zero-shot training mix (default: the --in-domain datasets)")
    ev.add_argument("--source", action="append", default=[], metavar="NAME=SPEC",
                    help="name an embedding source: run:<dir>[@stage], bundle:<dir>, backbone:<preset>, minilm "
                         "(built in: raw-backbone=backbone:quick, minilm=minilm)")
    ev.add_argument("--methods", nargs="+", help="default: popularity, id-sasrec, raw-backbone-sasrec, "
                                                 "minilm-sasrec and <source>-sasrec for every --source")
    ev.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    ev.add_argument("--max-users", type=int, help="keep only the first N users of each dataset (and their items)")
    ev.add_argument("--max-sequence", type=int, help="keep only each user's last N interactions")
    ev.add_argument("--zero-shot-train-max-users", type=int, metavar="N",
                    help="keep only the first N users of each dataset of the zero-shot training mix (after "
                         "--max-users; the datasets evaluated in-domain keep theirs)")
    ev.add_argument("--zero-shot-train-max-sequence", type=int, metavar="N",
                    help="keep only each user's last N interactions in the zero-shot training mix (after "
                         "--max-sequence)")
    ev.add_argument("--max-epochs", type=int, default=evaluation.Protocol.max_epochs,
                    help=f"cap on training epochs (default {evaluation.Protocol.max_epochs}); --patience stops runs "
                         f"earlier, and a run the cap ends first is reported as capped (not converged)")
    ev.add_argument("--patience", type=int, default=evaluation.Protocol.patience)
    ev.add_argument("--out", type=Path, default=Path("runs/evaluation"),
                    help="this machine's working files: epoch checkpoints, zero-shot models (and the cells unless "
                         "--cells)")
    ev.add_argument("--cells", type=Path, metavar="DIR", help="finished cells, one small JSON each (default OUT/cells; "
                                                              "a directory in git keeps them across machines)")
    ev.add_argument("--report", type=Path, default=Path("runs/evaluation/quality.json"),
                    help="the report; .md tables and a .png plot are written next to it")
    ev.add_argument("--threads", type=int, help="torch CPU threads")
    ev.add_argument("--report-only", action="store_true",
                    help="compute nothing: report on the cells finished so far (the rest are marked not run); a "
                         "trained run not on this machine is named by its record kept beside the cells")
    ev.add_argument("--verbose", action="store_true", help="show a progress bar per training epoch")
    ev.add_argument("--tuned", type=Path, metavar="REPORT", help="train each (dataset, method) that `tune` recorded in "
                                                                 "REPORT with its winning settings")
    tu = commands.add_parser("tune", help="tune a sequence-model method on validation over a small grid (resumable)",
                             description=tuning.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tu.add_argument("--dataset", required=True, metavar="DIR", help="the dataset, in the shared layout")
    tu.add_argument("--method", nargs="+", required=True, help="e.g. id-sasrec id-gru4rec (as evaluate names them)")
    tu.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                    help=f"values to try for one protocol field (repeatable); fields: {', '.join(evaluation.TUNABLE)}")
    tu.add_argument("--source", action="append", default=[], metavar="NAME=SPEC", help="as for evaluate")
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--max-users", type=int, help="keep only the first N users (and their items)")
    tu.add_argument("--max-sequence", type=int, help="keep only each user's last N interactions")
    tu.add_argument("--max-epochs", type=int, default=evaluation.Protocol.max_epochs)
    tu.add_argument("--patience", type=int, default=evaluation.Protocol.patience)
    tu.add_argument("--out", type=Path, default=Path("runs/tuning"),
                    help="each configuration's epoch checkpoint (and its finished cell unless --cells)")
    tu.add_argument("--cells", type=Path, metavar="DIR", help="each configuration's finished cell (default OUT; a "
                                                              "directory in git keeps them across machines)")
    tu.add_argument("--report", type=Path, default=Path("reports/tuning.json"),
                    help="merged into if it exists; .md and .png written beside it")
    tu.add_argument("--threads", type=int, help="torch CPU threads")
    tu.add_argument("--verbose", action="store_true", help="show a progress bar per training epoch")
    step = commands.add_parser("next-step", help="the configuration a tuned grid should try next, if any",
                               description="Prints the winner's settings in REPORT with one field stepped past the "
                                           "end of its range (tune.next_step), as FIELD=VALUE words, or nothing.")
    step.add_argument("--report", type=Path, default=Path("reports/tuning.json"))
    step.add_argument("--dataset", required=True, metavar="NAME", help="the dataset's name in the report")
    step.add_argument("--method", required=True)
    for direction in ("up", "down"):
        step.add_argument(f"--{direction}", action="append", dest="ladders", default=[], metavar="FIELD=V1,V2",
                          type=lambda item, direction=direction: (direction, item),
                          help=f"values to try {direction} from the winner's end of FIELD, nearest first "
                               "(repeatable; ladders are tried in the order given)")
    chat = commands.add_parser("generate", help="let the full SmolLM2 answer a prompt (backbone smoke test)")
    chat.add_argument("--prompt", default="What is the capital of France?")
    chat.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args(argv)

    config = None
    if args.command in ("bundle", "train"):
        # Every setting is checked before anything runs: a bad one is a usage error (exit 2) naming the field.
        try:
            module = bundle_presets if args.command == "bundle" else train_config
            config = module.resolve(args.preset, args.config, args.set)
        except ConfigError as error:
            (bundle if args.command == "bundle" else training).error(str(error))
    try:
        dispatch(args, argv, config)
    except ConfigError as error:  # evaluate's methods, sources and datasets are checked as it plans the cells
        parser.exit(2, f"{parser.prog} {args.command}: error: {error}\n")
    except (DataError, FileNotFoundError) as error:
        # Data that cannot be used, or a source or run that is not there, is the caller's to fix: the message names
        # the file (and line) and the reason; no traceback.
        parser.exit(1, f"{parser.prog} {args.command}: error: {error}\n")


def dispatch(args: argparse.Namespace, argv: list[str] | None, config) -> None:
    if args.command == "bundle":
        build_bundle(config, args.datasets, args.out, use_cache=not args.no_cache, encoder_run=args.encoder)
    elif args.command == "train":
        if args.threads:
            torch.set_num_threads(args.threads)
        if args.dry_run:
            dry_run(config, args.datasets)
        else:
            train_encoder(config, args.datasets, args.out or Path("runs") / config.name, args.max_minutes,
                          args.report_dir)
    elif args.command == "evaluate":
        run_evaluate(args, argv)
    elif args.command == "tune":
        run_tune(args, argv)
    elif args.command == "next-step":
        print(" ".join(f"{field}={value}" for field, value in (next_step(args) or {}).items()))
    else:
        print(generate(args.prompt, args.max_new_tokens))


def named_sources(items: list[str]) -> dict[str, str]:
    """`--source NAME=SPEC` items as {name: spec}."""
    sources = {}
    for item in items:
        name, _, spec = item.partition("=")
        if not name or not spec:
            raise SystemExit(f"--source {item!r}: write NAME=SPEC, e.g. llm2rec=run:runs/cpu")
        sources[name] = spec
    return sources


def command_line(argv: list[str] | None) -> str:
    """The command as a report records it."""
    return "python -m training.llm2rec.cli " + " ".join(sys.argv[1:] if argv is None else argv)


def run_evaluate(args: argparse.Namespace, argv: list[str] | None) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    sources = named_sources(args.source)
    methods = args.methods or (["popularity", "id-sasrec", "raw-backbone-sasrec", "minilm-sasrec"]
                               + [f"{name}-sasrec" for name in sources])
    protocol = evaluation.with_seeds(evaluation.Protocol(
        max_users=args.max_users, max_sequence=args.max_sequence,
        zero_shot_train_max_users=args.zero_shot_train_max_users,
        zero_shot_train_max_sequence=args.zero_shot_train_max_sequence,
        max_epochs=args.max_epochs, patience=args.patience), args.seeds)
    if args.tuned and not args.tuned.exists():
        raise SystemExit(f"--tuned {args.tuned}: no such report (write it with `tune`)")
    tuned = tuning.tuned_settings(tuning.load_report(args.tuned)) if args.tuned else {}
    plan = evaluation.Evaluation(protocol, args.in_domain, args.out_of_domain, args.zero_shot, args.zero_shot_train,
                                 methods, sources, tuned)
    if not (plan.in_domain or plan.out_of_domain or plan.zero_shot):
        raise SystemExit("give at least one dataset: --in-domain, --out-of-domain or --zero-shot")
    harness = evaluation.Harness(plan, args.out, quiet=not args.verbose, cells=args.cells)
    results = harness.run(compute=not args.report_only)
    return quality_report.write_report(harness, results, command_line(argv), args.report)


def next_step(args: argparse.Namespace) -> dict | None:
    """`next-step`: the ladders parsed as a grid's fields (so values take the field's type), applied to the entry."""
    entry = tuning.load_report(args.report)["datasets"].get(args.dataset, {}).get(args.method)
    if entry is None:
        raise ConfigError(f"{args.report} has no tuned {args.method} on {args.dataset}")
    ladders = []
    for direction, item in args.ladders:
        [(field, values)] = tuning.parse_grid([item], option=f"--{direction}").items()
        ladders.append((field, direction, values))
    return tuning.next_step(entry, ladders)


def run_tune(args: argparse.Namespace, argv: list[str] | None) -> None:
    """One dataset, one or more methods, one grid; each (dataset, method) merged into --report when it is done."""
    if args.threads:
        torch.set_num_threads(args.threads)
    grid = tuning.parse_grid(args.grid)
    sources = named_sources(args.source)
    if "popularity" in args.method:
        raise ConfigError("popularity has nothing to tune")
    base = evaluation.Protocol(max_users=args.max_users, max_sequence=args.max_sequence, max_epochs=args.max_epochs,
                               patience=args.patience)
    for method in args.method:
        where = Path(Path(args.dataset).name) / method
        name, entry = tuning.tune(args.dataset, method, grid, base, args.out / where, args.seed, sources,
                                  quiet=not args.verbose, cells=args.cells / where if args.cells else None)
        outcome, entry = tuning.record_in(args.report, name, method, entry, command_line(argv))
        print(f"{method} on {name}: {outcome}; best {entry['best']} -> {args.report}", flush=True)
        if entry["at_edge"]:
            edges = ", ".join(f"{field} (its {entry['winner_at'][field]} value)" for field in entry["at_edge"])
            print(f"warning: {method} on {name}: the winner is at the grid's edge for {edges}; widen the grid there",
                  flush=True)


if __name__ == "__main__":
    main()
