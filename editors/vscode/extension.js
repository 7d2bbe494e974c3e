// A minimal client for `graphspec lsp`: it starts the server over stdio for YAML files.
// The server answers only for specs (files with a `graphspec:` or `extends:` key); other
// YAML is left to yaml-language-server, which may run beside it (docs/editor.md).
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("graphspec").get("command");
  client = new LanguageClient(
    "graphspec",
    "graphspec",
    { command, args, transport: TransportKind.stdio },
    { documentSelector: [{ scheme: "file", language: "yaml" }] },
  );
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
