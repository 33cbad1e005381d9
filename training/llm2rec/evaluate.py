r"""The evaluation harness: LLM2Rec embeddings against the alternatives, under one protocol.

    python -m training.llm2rec.cli evaluate \
        --in-domain ../shared/data/amazon-games ../shared/data/movielens-small \
        --out-of-domain ../shared/data/amazon-scientific --zero-shot ../shared/data/amazon-scientific \
        --source llm2rec=run:runs/cpu --out runs/evaluation --report reports/quality.json

Protocol: each user's interactions in timestamp order (data.py: file order where a dataset has no timestamps),
leave-one-out per user (last item test, second-to-last validation, the rest training), full ranking over the
dataset's whole catalogue, Recall and NDCG at 5, 10 and 20, mean and sample standard deviation over seeds (no
standard deviation from a single seed). Sequence models train with a full softmax and stop early on validation
Recall@20 (`--patience` epochs without improvement); `--max-epochs` (default 800) is only a cap: a run it ends before
early stopping has not converged, and is flagged "capped" (a warning, the cell, the report's `capped_seeds`, a
footnote in the tables). The cap is not part of a cell's identity: a converged run is the same under any cap it did
not reach, so raising the cap keeps every converged cell, and a capped cell continues from its last epoch (its
checkpoint stays in OUT) instead of training again from the first.

A method is `popularity`, `id-<model>` (learned item-id embeddings) or `<source>-<model>` (frozen embeddings of a
named source behind a trainable linear adapter), with <model> `sasrec` or `gru4rec`. Sources are embedding specs
(item_embeddings.py) given names: `raw-backbone` and `minilm` are built in, others come from `--source NAME=SPEC`.

Settings: `in-domain` and `out-of-domain` train the sequence model on the dataset's own training split (they differ
in whether the embedding model saw the dataset); `zero-shot` trains it on the mix of the in-domain datasets and
evaluates on the target without training on it (methods that need the target's own interactions do not apply).
The zero-shot sequence model of a (method, seed) is trained once and ranks every zero-shot target.

Limits: `--max-users N` keeps the first N users of every dataset (and their items), `--max-sequence N` each user's
last N interactions. `--zero-shot-train-max-users` and `--zero-shot-train-max-sequence` cut only the zero-shot
training mix, on top of those (the in-domain targets made of the same datasets keep their size).

Every (dataset, setting, method, seed) result is a small JSON file under CELLS (default OUT/cells), written when it
is done: a rerun skips what is finished (so an interrupted evaluation resumes), and recomputes a cell whose inputs
changed. A trained encoder enters a cell's inputs by its recipe, the command that trained it (item_embeddings.py):
an encoder trained again by the same command, on a machine that lost the first, adds seeds to the same rows, and
each cell names its encoder run (`encoder_run`). Point `--cells` into the repository to keep finished cells across
machines; OUT holds what is only worth keeping on this one: the epoch checkpoints of cells in training
(OUT/checkpoints) and the shared zero-shot models (OUT/zero-shot-models, named by a fingerprint of what decides
them, so a resumed evaluation does not train them again).
"""

import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError
from .fingerprint import fingerprint
from .data import DataError, Dataset, first_users, leave_one_out, load_dataset, recent_items
from .gru4rec import GRU4Rec
from .item_embeddings import EmbeddingSource, embed_catalogue, kept_run_record, open_source, run_recipe
from .metrics import CUTOFFS
from .sasrec import SASRec, Adapter
from .seeding import seed_everything
from .train_encoder import machine
from .train_sequence import (MIX_SOFTMAX, TRAINING_PROCEDURE, EmbeddingItemTable, IdItemTable, TrainingPart, evaluate,
                             popularity, save_atomically, train)

SETTINGS = ("in-domain", "out-of-domain", "zero-shot")
MODELS = ("sasrec", "gru4rec")
BUILT_IN_SOURCES = {"raw-backbone": "backbone:quick", "minilm": "minilm"}
METRICS = tuple(f"{name}@{k}" for k in CUTOFFS for name in ("recall", "ndcg"))


@dataclass(frozen=True)
class Protocol:
    """Everything that decides a result besides the data, the method and the seed (the paper's settings)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    max_users: int | None = None  # None: every user; otherwise the first users of each dataset (and their items)
    max_sequence: int | None = None  # None: whole histories; otherwise each user's last N interactions
    # the same two limits for the zero-shot training mix only, applied after the ones above (None: no further cut)
    zero_shot_train_max_users: int | None = None
    zero_shot_train_max_sequence: int | None = None
    rec_dim: int = 128  # the adapter maps item embeddings to this size; also the ID embedding size
    max_history: int = 10  # the most recent items the sequence model sees
    layers: int = 2  # SASRec blocks (GRU4Rec: 1 GRU layer)
    heads: int = 2
    dropout: float = 0.3
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256  # training windows per step
    # a cap that should not bind: a run it ends before early stopping is flagged "capped". 800 since 2026-12-05 (400
    # before, 200 until 2026-12-04): on amazon-scientific, tuned ID-GRU4Rec's best epochs were 349, 385 and 416, and
    # ID-SASRec at dropout 0.8 improved until epochs 403-409 (its dropout-0.7 winner until 257-293)
    max_epochs: int = 800
    # early stopping: epochs without a better validation Recall@20. 20 as the authors' downstream setting (reference
    # recipe); 5 stopped a full-data movielens-small run on its first epoch (610 validation users are noisy)
    patience: int = 20


ZERO_SHOT_ONLY = ("zero_shot_train_max_users", "zero_shot_train_max_sequence")  # Protocol fields of the mix only
# Protocol fields a (dataset, method) may have tuned for it (tune.py); the rest is one protocol for all.
TUNABLE = ("learning_rate", "dropout", "max_history", "weight_decay", "patience")


# Every cell saved before the cap left the identity ran under this cap, and its identity included it.
LEGACY_MAX_EPOCHS = 200


def protocol_identity(protocol: Protocol, zero_shot: bool, with_cap: bool = True) -> dict:
    """The protocol's part of a result's identity: every field but the seeds (and but the epoch cap, for a cell:
    `with_cap=False`, see Harness.finished); the zero-shot mix's limits only for zero-shot results, and only when
    set (unset, they change nothing, so results computed before they existed stay valid)."""
    return {**{k: v for k, v in asdict(protocol).items()
               if k != "seeds" and not (k in ZERO_SHOT_ONLY and (not zero_shot or v is None))
               and not (k == "max_epochs" and not with_cap)},
            "training": TRAINING_PROCEDURE, **({"mix_softmax": MIX_SOFTMAX} if zero_shot else {})}


def capped(best_epoch: int, epochs_run: int, protocol: Protocol) -> bool:
    """Whether the epoch cap, not early stopping, ended a training run: it ran every epoch allowed and fewer than
    `patience` of them came after the best one (e.g. the best epoch is the last). Such a run has not converged."""
    return epochs_run == protocol.max_epochs and epochs_run - best_epoch < protocol.patience


@dataclass(frozen=True)
class Method:
    name: str
    model: str  # "popularity" or one of MODELS
    source: str | None  # the embedding source's name; None for popularity and the ID models


@dataclass
class Target:
    """A dataset as it is reported: `key` is its name, with "/zero-shot" for the zero-shot setting."""
    key: str
    setting: str
    dataset: Dataset


@dataclass
class Evaluation:
    protocol: Protocol
    in_domain: list[str] = field(default_factory=list)  # dataset directories
    out_of_domain: list[str] = field(default_factory=list)
    zero_shot: list[str] = field(default_factory=list)
    zero_shot_train: list[str] = field(default_factory=list)  # the zero-shot training mix; default: in_domain
    methods: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # name -> spec, on top of BUILT_IN_SOURCES
    # dataset name -> method -> TUNABLE protocol fields chosen on validation (tune.py), for the settings that train
    # on the dataset itself (in-domain, out-of-domain); zero-shot models keep the common protocol
    tuned: dict[str, dict[str, dict]] = field(default_factory=dict)


def check_tuned(tuned: dict[str, dict[str, dict]]) -> None:
    for dataset, methods in tuned.items():
        for method, fields in methods.items():
            unknown = sorted(set(fields) - set(TUNABLE))
            if unknown:
                raise ConfigError(f"tuned settings of {method} on {dataset}: {', '.join(unknown)} cannot be tuned "
                                  f"(tunable: {', '.join(TUNABLE)})")


def parse_method(name: str, sources: dict[str, str]) -> Method:
    if name == "popularity":
        return Method(name, "popularity", None)
    match = re.fullmatch(r"(.+)-(sasrec|gru4rec)", name)
    if not match:
        raise ConfigError(f"unknown method {name!r}: use popularity, id-<model> or <source>-<model>, "
                         f"<model> one of {', '.join(MODELS)}")
    source, model = match.groups()
    if source != "id" and source not in sources:
        raise ConfigError(f"method {name!r} needs the embedding source {source!r}: give it with --source "
                         f"{source}=SPEC (known sources: {', '.join(sorted(sources)) or 'none'})")
    return Method(name, model, None if source == "id" else source)


def whole_catalogue_cutoffs(items: int) -> list[int]:
    """The cutoffs that take in a whole catalogue of `items` items: every target is found, Recall@k is 1."""
    return [k for k in CUTOFFS if k >= items]


def dataset_identity(dataset: Dataset) -> dict:
    return {"name": dataset.name, "items": len(dataset.item_ids), "users": len(dataset.sequences),
            "interactions": dataset.interactions,
            "sha256": fingerprint([dataset.item_ids, dataset.titles, dataset.sequences])}


def cut(dataset: Dataset, max_users: int | None, max_sequence: int | None) -> Dataset:
    """The dataset's first `max_users` users (and their items), each user's last `max_sequence` interactions; None:
    no limit."""
    if max_users is not None:
        dataset = first_users(dataset, max_users)
    if max_sequence is not None:
        dataset = recent_items(dataset, max_sequence)
    return dataset


def sequence_model(protocol: Protocol, kind: str) -> torch.nn.Module:
    if kind == "sasrec":
        return SASRec(protocol.rec_dim, protocol.max_history, protocol.layers, protocol.heads, protocol.dropout)
    return GRU4Rec(protocol.rec_dim, protocol.max_history, layers=1, dropout=protocol.dropout)


class Harness:
    """Runs the cells of an Evaluation, keeping each result in `cells` (default OUT/cells), the epoch checkpoints
    and the zero-shot models it shares between targets under OUT and the embeddings on disk."""

    def __init__(self, evaluation: Evaluation, out: Path, quiet: bool = True, split_shown: str = "test",
                 cells: Path | None = None):
        self.evaluation = evaluation
        self.split_shown = split_shown  # which split's metrics the progress lines show (tuning: "validation")
        self.protocol = evaluation.protocol
        self.out = Path(out)
        self.cells = Path(cells) if cells is not None else self.out / "cells"
        self.run_records = self.cells / "encoder-runs"  # the records of the encoder runs the cells embedded with
        self.quiet = quiet
        self.source_specs = {**BUILT_IN_SOURCES, **evaluation.sources}
        self.methods = [parse_method(name, self.source_specs) for name in evaluation.methods]
        check_tuned(evaluation.tuned)
        self._sources: dict[str, EmbeddingSource] = {}
        self._missing: dict[str, str | None] = {}  # missing_source's answers
        self._recipes: dict[str, str | None] = {}  # each source's recipe, None where it cannot be told here
        self._embeddings: dict[tuple[str, str, str], torch.Tensor] = {}
        protocol = self.protocol
        loaded = {path: cut(load_dataset(path), protocol.max_users, protocol.max_sequence) for path in
                  {*evaluation.in_domain, *evaluation.out_of_domain, *evaluation.zero_shot, *evaluation.zero_shot_train}}
        for path, dataset in loaded.items():
            if not dataset.sequences:
                raise DataError(f"{path} has no interactions.csv rows: there is nothing to evaluate on")
            if not any(len(sequence) >= 3 for sequence in dataset.sequences):
                raise DataError(f"{path}: no user has 3 or more interactions (after the cut to this run's users and "
                                f"history length), so leave-one-out has no test user")
        self.zero_shot_train = [cut(loaded[path], protocol.zero_shot_train_max_users,
                                    protocol.zero_shot_train_max_sequence)
                                for path in evaluation.zero_shot_train or evaluation.in_domain]
        self.targets = ([Target(loaded[p].name, "in-domain", loaded[p]) for p in evaluation.in_domain]
                        + [Target(loaded[p].name, "out-of-domain", loaded[p]) for p in evaluation.out_of_domain]
                        + [Target(f"{loaded[p].name}/zero-shot", "zero-shot", loaded[p]) for p in evaluation.zero_shot])
        if evaluation.zero_shot and not self.zero_shot_train:
            raise ConfigError("zero-shot evaluation trains on the in-domain datasets: give --in-domain (or "
                             "--zero-shot-train) too")
        keys = [t.key for t in self.targets]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"a dataset is listed twice under one setting: {keys}")
        for target in self.targets:
            if whole := whole_catalogue_cutoffs(len(target.dataset.item_ids)):
                print(f"WARNING {target.key}: only {len(target.dataset.item_ids)} items, so Recall@k is 1 by "
                      f"construction at k = {', '.join(map(str, whole))}", flush=True)

    # -- inputs ---------------------------------------------------------------------------------------------------

    def source(self, name: str) -> EmbeddingSource:
        if name not in self._sources:
            self._sources[name] = open_source(self.source_specs[name])
        return self._sources[name]

    def missing_source(self, name: str | None) -> str | None:
        """Why source `name` cannot be opened on this machine (a run not trained here yet), or None if it can."""
        if name is None:
            return None
        if name not in self._missing:  # asked once per cell: open (or fail to open) each source once
            try:
                self.source(name)
                self._missing[name] = None
            except FileNotFoundError as error:
                self._missing[name] = str(error)
        return self._missing[name]

    def kept_record(self, name: str) -> dict | None:
        """For a trained run this machine does not have: the newest record of that run kept beside the cells."""
        return kept_run_record(self.source_specs[name], self.run_records)

    def unnamed_source(self, name: str | None) -> str | None:
        """Why the cells of source `name` cannot be told on this machine (neither the source nor a kept record of
        it is here), or None if they can. Its recipe names them (item_embeddings): the source's own, or, for a
        trained run not on this machine, that of its record kept beside the cells, so that its finished cells can
        be reported without the encoder."""
        if name is None:
            return None
        if name not in self._recipes:  # asked once per cell: look for the source, or its record, once
            if self.missing_source(name) is None:
                self._recipes[name] = self.source(name).recipe
            else:
                self._recipes[name] = run_recipe(record) if (record := self.kept_record(name)) else None
        return None if self._recipes[name] else self.missing_source(name)

    def recipe(self, name: str) -> str:
        """What names the cells of source `name` (unnamed_source); FileNotFoundError where it cannot be told."""
        if missing := self.unnamed_source(name):
            raise FileNotFoundError(missing)
        return self._recipes[name]

    def embeddings(self, source: str, dataset: Dataset) -> torch.Tensor:
        # keyed by the catalogue, not the name: the zero-shot mix may hold a smaller cut of an in-domain dataset
        key = (source, dataset.name, fingerprint(dataset.item_ids))
        if key not in self._embeddings:
            array = embed_catalogue(self.source(source), dataset.titles, dataset.name)
            self._embeddings[key] = torch.from_numpy(array)
        return self._embeddings[key]

    def tuned_fields(self, target: Target, method: Method) -> dict:
        """The protocol fields tuned for `method` on the target's dataset; none for zero-shot targets."""
        if target.setting == "zero-shot":
            return {}
        return dict(self.evaluation.tuned.get(target.dataset.name, {}).get(method.name, {}))

    def protocol_for(self, target: Target, method: Method) -> Protocol:
        """The protocol a cell trains under: the common one with the (dataset, method)'s tuned fields."""
        return replace(self.protocol, **self.tuned_fields(target, method))

    @staticmethod
    def cell_path(target: Target, method: Method) -> Path:
        """<target>/<method>: where a cell's files sit, under `cells` (results) and OUT/checkpoints."""
        return Path(target.key.replace("/", "--")) / method.name

    def cell_file(self, target: Target, method: Method, seed: int) -> Path:
        return self.cells / self.cell_path(target, method) / f"seed-{seed}.json"

    def cell_identity(self, target: Target, method: Method, legacy: bool = False) -> str:
        """What decides a cell's result, but for its seed and the epoch cap (`finished` checks the cap); `legacy`:
        the identity cells had before the cap left it, with the cap they all ran under."""
        zero_shot = target.setting == "zero-shot"
        trained_on = self.zero_shot_train if zero_shot else [target.dataset]
        protocol = self.protocol_for(target, method)
        if legacy:
            protocol = replace(protocol, max_epochs=LEGACY_MAX_EPOCHS)
        return fingerprint({
            "protocol": protocol_identity(protocol, zero_shot, with_cap=legacy),
            "method": asdict(method),
            "source": self.recipe(method.source) if method.source else None,
            "target": dataset_identity(target.dataset), "setting": target.setting,
            "trained_on": [dataset_identity(d) for d in trained_on],
        })

    def zero_shot_model_file(self, method: Method, seed: int) -> Path:
        """Where the zero-shot model of (method, seed) is kept: named by a fingerprint of what decides its weights."""
        identity = fingerprint({
            "protocol": protocol_identity(self.protocol, zero_shot=True), "method": asdict(method),
            "source": self.source(method.source).identity, "seed": seed,
            "trained_on": [dataset_identity(d) for d in self.zero_shot_train],
        })
        return self.out / "zero-shot-models" / method.name / f"seed-{seed}-{identity}.pt"

    def checkpoint_file(self, target: Target, method: Method, seed: int) -> Path:
        """Where an in-domain cell's training keeps its epoch checkpoint until the cell is saved (a capped cell's
        stays). Named by the cell's identity and the exact weights of its source: epochs trained over one encoder's
        embeddings do not continue over those of an encoder trained again by the same command."""
        identity = self.cell_identity(target, method)
        if method.source:
            identity = fingerprint([identity, self.source(method.source).identity])
        return self.out / "checkpoints" / self.cell_path(target, method) / f"seed-{seed}-{identity}.checkpoint.pt"

    # -- running --------------------------------------------------------------------------------------------------

    def finished(self, target: Target, method: Method, seed: int, identity: str) -> dict | None:
        """The cell's saved result, if it was computed from the same inputs (`identity`) and the epoch cap gives the
        same result: the cap it ran under, or any cap at or above its last epoch if early stopping ended it."""
        file = self.cell_file(target, method, seed)
        if not file.exists():
            return None
        saved = json.loads(file.read_text())
        if saved.get("identity") != identity:  # saved before the cap left the identity? (then it ran under 200)
            if saved.get("identity") != self.cell_identity(target, method, legacy=True):
                return None
            saved = {**saved, "identity": identity, "max_epochs": LEGACY_MAX_EPOCHS}
        if "epochs_run" not in saved:  # popularity, or not applicable: nothing trained, no cap
            return saved
        cap = self.protocol_for(target, method).max_epochs
        same = saved["max_epochs"] == cap or (not saved["capped"] and saved["epochs_run"] <= cap)
        return saved if same else None

    def run(self, compute: bool = True) -> list[dict]:
        """Every cell, finished ones read back from disk; returns them all. With compute=False only the finished
        ones (to report on an evaluation that is still running or was interrupted)."""
        cells = [(t, m, s) for t in self.targets for m in self.methods for s in self.protocol.seeds]
        results = []
        for number, (target, method, seed) in enumerate(cells, start=1):
            label = f"[{number}/{len(cells)}] {target.key} {method.name} seed {seed}"
            if not compute and (missing := self.unnamed_source(method.source)):
                # which saved cells are its results cannot be told without the source or its record: not run
                print(f"{label}: not reported, {missing}", flush=True)
                continue
            identity = self.cell_identity(target, method)
            cell = {"dataset": target.key, "setting": target.setting, "method": method.name, "seed": seed,
                    "identity": identity}
            saved = self.finished(target, method, seed, identity)
            if saved is not None:
                print(f"{label}: done before, {_summary(saved, self.split_shown)}", flush=True)
                self.warn_if_capped(label, saved)
                results.append(saved)
                continue
            if not compute:
                if (reason := self.not_applicable(target, method)) is not None:  # known without computing anything
                    results.append({**cell, "not_applicable": reason})
                    continue
                print(f"{label}: not computed yet", flush=True)
                continue
            file = self.cell_file(target, method, seed)
            started = time.time()
            result = {**cell, **self.compute(target, method, seed)}
            if method.source and (run := self.source(method.source).trained_by):
                result["encoder_run"] = self.keep_run_record(run)
            result["seconds"] = round(time.time() - started + result.pop("seconds_before_resume", 0.0), 1)
            result["machine"] = computed_on()
            file.parent.mkdir(parents=True, exist_ok=True)
            temporary = file.with_suffix(".tmp")
            temporary.write_text(json.dumps(result, indent=1) + "\n")
            temporary.replace(file)
            if not result.get("capped"):  # a capped run's last epoch stays, for a higher cap to continue from
                self.checkpoint_file(target, method, seed).unlink(missing_ok=True)
            print(f"{label}: {_summary(result, self.split_shown)} in {result['seconds']:.0f}s", flush=True)
            self.warn_if_capped(label, result)
            results.append(result)
        return results

    def keep_run_record(self, record: dict) -> str:
        """Keeps the record of the encoder run a cell embedded with beside the cells (CELLS/encoder-runs/<run id>.json:
        machine, precision, steps, seconds; the weights are not kept): a row's seeds may come from encoders trained
        again by the same command (item_embeddings). Returns the run id."""
        file = self.run_records / f"{record['run_id']}.json"
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(record, indent=2) + "\n")
        return record["run_id"]

    @staticmethod
    def warn_if_capped(label: str, result: dict) -> None:
        if result.get("capped"):
            print(f"WARNING {label}: the {result['max_epochs']}-epoch cap ended training before early stopping "
                  f"(best epoch {result['best_epoch']}): not converged, raise --max-epochs", flush=True)

    @staticmethod
    def not_applicable(target: Target, method: Method) -> str | None:
        """Why `method` cannot rank `target` at all (zero-shot: nothing of the target domain is learnt), or None."""
        if target.setting != "zero-shot":
            return None
        if method.model == "popularity":
            return "popularity needs the target domain's own interactions"
        if method.source is None:
            return "item-id embeddings know nothing of the target domain's items"
        return None

    def compute(self, target: Target, method: Method, seed: int) -> dict:
        zero_shot = target.setting == "zero-shot"
        protocol = self.protocol_for(target, method)
        if (reason := self.not_applicable(target, method)) is not None:
            return {"not_applicable": reason}
        if method.model == "popularity":
            metrics = popularity(leave_one_out(target.dataset.sequences), len(target.dataset.item_ids))
            return {"test": metrics["test"], "validation": metrics["validation"]}

        split = leave_one_out(target.dataset.sequences)
        if zero_shot:
            adapter, model, log, model_file = self.zero_shot_model(method, seed)
            items = EmbeddingItemTable(self.embeddings(method.source, target.dataset), adapter).eval()
            with torch.no_grad():
                item_vectors = items()
            validation = evaluate(model, item_vectors, split.valid_histories, split.valid_targets)
            trained_on, shared = self.zero_shot_train, {"zero_shot_model": str(model_file.relative_to(self.out))}
        else:
            items, model, log = self.train_sequence_model(method, seed, [target.dataset], protocol,
                                                          self.checkpoint_file(target, method, seed))
            with torch.no_grad():
                item_vectors = items()
            validation = log["epochs"][log["best_epoch"] - 1]["validation"][target.dataset.name]
            trained_on, shared = [target.dataset], {}
        test = evaluate(model, item_vectors, split.test_histories, split.test_targets)
        epochs_run = len(log["epochs"])
        if "resumed_after_epochs" in log and not zero_shot:  # the epochs an interrupted run trained count too
            shared["seconds_before_resume"] = sum(e["seconds"] for e in log["epochs"][:log["resumed_after_epochs"][-1]])
        return {"test": test, "validation": validation, "best_epoch": log["best_epoch"], "epochs_run": epochs_run,
                "precision": log["precision"]["used"], "max_epochs": protocol.max_epochs,
                "capped": capped(log["best_epoch"], epochs_run, protocol),
                "trained_on": [d.name for d in trained_on], **shared,
                "losses": [round(e["loss"], 4) for e in log["epochs"]]}

    def train_sequence_model(self, method: Method, seed: int, datasets: list[Dataset], protocol: Protocol | None = None,
                             checkpoint: Path | None = None) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
        """(item table, sequence model, training log) of `method` trained from `seed` on the datasets' training
        splits (one item table over their combined catalogue; each window's softmax over its own dataset's items),
        under `protocol` (default: the common one); the weights are those of the best validation epoch. An
        interrupted training continues from `checkpoint`."""
        protocol = protocol or self.protocol
        seed_everything(seed)
        offsets = np.cumsum([0] + [len(d.item_ids) for d in datasets]).tolist()
        parts = [TrainingPart(d.name, offset, len(d.item_ids), leave_one_out(d.sequences))
                 for d, offset in zip(datasets, offsets)]
        if method.source is None:
            items = IdItemTable(offsets[-1], protocol.rec_dim)
        else:
            catalogue = torch.cat([self.embeddings(method.source, d) for d in datasets])
            items = EmbeddingItemTable(catalogue, Adapter(catalogue.shape[1], protocol.rec_dim))
        model = sequence_model(protocol, method.model)
        log = train(items, model, parts, protocol.max_epochs, protocol.batch_size,
                    protocol.learning_rate, protocol.weight_decay, protocol.patience, quiet=self.quiet,
                    checkpoint=checkpoint)
        return items, model, log

    def zero_shot_model(self, method: Method, seed: int) -> tuple[Adapter, torch.nn.Module, dict, Path]:
        """(adapter, sequence model, training log, file) of `method` and `seed` trained on the zero-shot mix: trained
        by the first zero-shot target that needs it, saved, and read back by the others (and by a resumed run)."""
        file = self.zero_shot_model_file(method, seed)
        if file.exists():
            saved = torch.load(file, weights_only=True)
            adapter = Adapter(saved["adapter"]["proj.weight"].shape[1], self.protocol.rec_dim)
            adapter.load_state_dict(saved["adapter"])
            model = sequence_model(self.protocol, method.model)
            model.load_state_dict(saved["model"])
            print(f"zero-shot model of {method.name} seed {seed} trained before: {file}", flush=True)
            return adapter.eval(), model.eval(), json.loads(saved["log"]), file
        print(f"zero-shot model of {method.name} seed {seed}: training on "
              f"{' + '.join(d.name for d in self.zero_shot_train)}, once for every zero-shot target", flush=True)
        checkpoint = file.with_suffix(".checkpoint.pt")
        items, model, log = self.train_sequence_model(method, seed, self.zero_shot_train, checkpoint=checkpoint)
        # two processes may train it at once
        save_atomically(file, {"adapter": items.adapter.state_dict(), "model": model.state_dict(), "log": json.dumps(log)})
        checkpoint.unlink(missing_ok=True)
        return items.adapter, model, log, file


def computed_on() -> str:
    """The machine a cell was computed on, as one line: seeds of a cell may come from different machines (cells are
    kept across machines), and the CPU's features decide the precision and the seconds."""
    record = machine()
    return f"{record['cpu']} ({', '.join(record['cpu_features']) or 'no avx2'}), {record['torch_threads']} threads"


def _summary(result: dict, split: str) -> str:
    if "not_applicable" in result:
        return "not applicable"
    return f"{split} R@10 {result[split]['recall@10']:.4f} N@10 {result[split]['ndcg@10']:.4f}"


def with_seeds(protocol: Protocol, count: int) -> Protocol:
    return replace(protocol, seeds=tuple(range(count)))
