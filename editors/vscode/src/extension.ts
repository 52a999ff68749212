// Activation: output channels, status bar, commands, and the language client (see server.ts).
import * as vscode from 'vscode';
import { ServerManager } from './server';
import { affectsServer, needsRestart, SECTION, serverKeys } from './settings';
import { StatusItem } from './status';

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    const output = vscode.window.createOutputChannel('codeassist', { log: true });
    const traceOutput = vscode.window.createOutputChannel('codeassist Trace', { log: true });
    const status = new StatusItem();
    manager = new ServerManager(output, traceOutput, status, serverKeys(context.extension.packageJSON));
    const servers = manager;

    context.subscriptions.push(
        output, traceOutput, status, servers,
        vscode.commands.registerCommand('codeassist.restartServer', async () => {
            output.info('restarting the server');
            await servers.start();
        }),
        vscode.commands.registerCommand('codeassist.showStatus', async () => {
            const report = await servers.statusReport().catch((error) => {
                output.error(`codeassist.status: ${error}`);
                return undefined;
            });
            if (!report) {
                void vscode.window.showWarningMessage('codeassist: the server is not running (see the output channel).');
                output.show();
                return;
            }
            output.info(`status:\n${JSON.stringify(report, null, 2)}`);
            const stats = Object.entries(report.stats ?? {}).map(([key, value]) => `${key} ${value}`).join(', ');
            const model = report.model.state === 'ready' ? `${report.model.id} ready`
                : report.model.state === 'error' ? `model error: ${report.model.error}` : 'model loading';
            const choice = await vscode.window.showInformationMessage(`codeassist: ${model}; ${stats}`, 'Show Details');
            if (choice) {
                output.show();
            }
        }),
        // The agent: an instruction (and the active file's folder as the scope, if the user wants)
        // goes to the server's codeassist.agent command, whose one edit VS Code previews for confirmation.
        // From the command palette, or from the code-action menu with the active file's folder.
        vscode.commands.registerCommand('codeassist.changeWorkspace', async (options?: { folder?: string }) => {
            const instruction = await vscode.window.showInputBox({
                title: 'codeassist: change the workspace',
                prompt: 'What should change? e.g. "Rename fetch_user to load_user"',
            });
            if (!instruction) {
                return;
            }
            const folder = options?.folder ? vscode.Uri.parse(options.folder) : vscode.window.activeTextEditor
                ? vscode.Uri.joinPath(vscode.window.activeTextEditor.document.uri, '..') : undefined;
            const scope = folder ? await vscode.window.showQuickPick(
                [{ label: 'Whole workspace', uri: undefined }, { label: vscode.workspace.asRelativePath(folder), uri: folder }],
                { title: 'codeassist: where' }) : undefined;
            const result = await vscode.commands.executeCommand<{ summary?: string; applied?: boolean }>(
                'codeassist.agent', { instruction, scope: scope?.uri?.toString() });
            output.info(`agent: ${JSON.stringify(result)}`);
        }),
        vscode.commands.registerCommand('codeassist.toggleInlineSuggestions', async () => {
            const config = vscode.workspace.getConfiguration(SECTION);
            const enabled = !config.get<boolean>('completion.enabled', true);
            // Write where the setting is defined, so a workspace value is not shadowing the toggle.
            const inspect = config.inspect<boolean>('completion.enabled');
            const target = inspect?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
                : inspect?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace
                    : vscode.ConfigurationTarget.Global;
            await config.update('completion.enabled', enabled, target);
            void vscode.window.showInformationMessage(`codeassist: inline suggestions ${enabled ? 'on' : 'off'}.`);
        }),
        vscode.workspace.onDidChangeConfiguration(async (event) => {
            if (needsRestart(event)) {
                await servers.start();
            } else if (affectsServer(event)) {
                await servers.pushSettings();
            }
        }),
    );
    await servers.start();
}

export async function deactivate(): Promise<void> {
    await manager?.stop();
}
