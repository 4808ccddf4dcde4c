// The TextMate grammar's scopes, checked with VS Code's own tokenizer (vscode-textmate + vscode-oniguruma):
// chosen tokens of the repository's specs get the scope they must have, and every word of every spec in
// specs/ and examples/ gets a scope of its own (none is left as bare `source.arch`).
// Run: npm install && npm test (from editors/vscode).
"use strict";
const fs = require("fs");
const path = require("path");
const assert = require("assert");
const oniguruma = require("vscode-oniguruma");
const textmate = require("vscode-textmate");

const HERE = __dirname;
const ROOT = path.resolve(HERE, "../../..");

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
  await oniguruma.loadWASM(wasm);
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async () => {
      const file = path.join(HERE, "..", "syntaxes", "arch.tmLanguage.json");
      return textmate.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  return registry.loadGrammar("source.arch");
}

// [line, text, scopes of each token] of a file; the rule stack carries across lines (train { }, allow)
function tokenize(grammar, text) {
  const out = [];
  let stack = textmate.INITIAL;
  text.split("\n").forEach((line, number) => {
    const result = grammar.tokenizeLine(line, stack);
    for (const token of result.tokens) {
      out.push({ line: number + 1, text: line.slice(token.startIndex, token.endIndex), scopes: token.scopes });
    }
    stack = result.ruleStack;
  });
  return out;
}

function scopeOf(tokens, line, text) {
  const token = tokens.find((t) => t.line === line && t.text === text);
  assert(token, `no token '${text}' on line ${line}`);
  return token.scopes[token.scopes.length - 1];
}

function expectScopes(name, tokens, expected) {
  for (const [line, text, scope] of expected) {
    const got = scopeOf(tokens, line, text);
    assert.strictEqual(got, scope, `${name}:${line} '${text}': ${got}, not ${scope}`);
  }
}

function specs() {
  const files = [];
  for (const dir of ["specs", "examples", "examples/spaces"]) {
    for (const f of fs.readdirSync(path.join(ROOT, dir))) {
      if (f.endsWith(".arch")) files.push(path.join(dir, f));
    }
  }
  return files.sort();
}

(async () => {
  const grammar = await loadGrammar();
  const read = (f) => fs.readFileSync(path.join(ROOT, f), "utf8");

  const best = tokenize(grammar, read("specs/best.arch"));
  expectScopes("specs/best.arch", best, [
    [1, "# The seed's best model (EIP Session 3, \"Success 09\"): separable convolutions only,", "comment.line.number-sign.arch"],
    [8, "model", "keyword.other.header.arch"],
    [8, "best", "entity.name.type.model.arch"],
    [9, "32x32x3", "constant.numeric.size.arch"],
    [10, "10", "constant.numeric.arch"],
    [12, "sep", "support.function.op.arch"],
    [12, "3x3", "constant.numeric.size.arch"],
    [12, "16", "constant.numeric.arch"],
    [12, "same", "keyword.other.option.arch"],
    [12, "drop", "keyword.other.option.arch"],
    [12, ".05", "constant.numeric.arch"],
    [12, "bn", "keyword.other.option.arch"],
    [12, "relu", "support.constant.activation.arch"],
    [17, "s2", "keyword.other.option.arch"],
    [20, "valid", "keyword.other.option.arch"],
    [22, "classes", "variable.other.arch"],
    [23, "gap", "support.function.op.arch"],
    [25, "softmax", "support.function.op.arch"],
    [27, "assert", "keyword.control.assert.arch"],
    [27, "params", "variable.other.metric.arch"],
    [27, "<=", "keyword.operator.comparison.arch"],
    [27, "80k", "constant.numeric.arch"],
    [28, "in", "keyword.operator.word.arch"],
    [28, "flatten", "support.function.op.arch"],
  ]);
  const trainLine = read("specs/best.arch").split("\n").findIndex((l) => l.startsWith("train {")) + 1;
  const trainBody = read("specs/best.arch").split("\n")[trainLine].trim().split(/\s+/)[0];
  expectScopes("specs/best.arch", best, [
    [trainLine, "train", "keyword.control.train.arch"],
    [trainLine + 1, trainBody, "variable.other.setting.arch"],
  ]);

  const resnet = tokenize(grammar, read("examples/resnet8.arch"));
  expectScopes("examples/resnet8.arch", resnet, [
    [9, "block", "keyword.control.block.arch"],
    [9, "stack", "entity.name.type.block.arch"],
    [9, "c", "variable.parameter.arch"],
    [10, "residual", "keyword.control.structure.arch"],
    [11, "c", "variable.other.arch"],
    [11, "stride", "keyword.other.option.arch"],
    [11, "bias", "keyword.other.option.arch"],
    [13, "shortcut", "keyword.control.structure.arch"],
    [16, "relu", "support.function.op.arch"],
    [25, "stack", "entity.name.function.block.arch"],
    [25, "32", "constant.numeric.arch"],
    [29, "dense", "support.function.op.arch"],
  ]);

  const space = tokenize(grammar, read("examples/spaces/record_widths.arch"));
  expectScopes("examples/spaces/record_widths.arch", space, [
    [8, "choose", "keyword.control.choose.arch"],
    [8, "w1", "variable.other.choice.arch"],
    [8, "in", "keyword.operator.word.arch"],
    [8, "48", "constant.numeric.arch"],
    [11, "3x3", "constant.numeric.size.arch"],
    [16, "k", "variable.other.arch"],
    [24, "w1", "variable.other.arch"],
  ]);

  // every word of every spec is scoped: an op, option, value, keyword, name or comment
  let words = 0;
  for (const f of specs()) {
    for (const t of tokenize(grammar, read(f))) {
      const bare = t.scopes.length === 1;
      if (/\w/.test(t.text)) {
        words += 1;
        assert(!bare, `${f}:${t.line} '${t.text}' has no scope of its own`);
      }
    }
  }
  console.log(`grammar ok: ${specs().length} specs, ${words} scoped tokens`);
})().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
