/** How a benchmark was started, for its report: the command to type to run it again. */

/** An argument as a POSIX shell would need it typed. */
function shellQuoted(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** `npm run <script>` with this process's arguments after `--`, each quoted where a shell needs it. */
export function invokedAs(script: string): string {
  const args = process.argv.slice(2);
  return ['npm run ' + script, ...(args.length > 0 ? ['--', ...args.map(shellQuoted)] : [])].join(' ');
}
