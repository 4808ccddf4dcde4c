// Starts `archdsl lsp` (archdsl.server.command) for .arch files; everything else is the server's.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("archdsl").get("server.command");
  client = new LanguageClient(
    "archdsl",
    "archdsl",
    { command, args },
    { documentSelector: [{ scheme: "file", language: "arch" }, { scheme: "untitled", language: "arch" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
