// Creating, starting and restarting the language client; what the server reports (progress,
// errors) is mirrored in the status bar.
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import {
    DidChangeConfigurationNotification,
    ExecuteCommandRequest,
    LanguageClient,
    LanguageClientOptions,
    MessageType,
    ServerOptions,
    ShowMessageNotification,
    State,
    TransportKind,
    WorkDoneProgress,
    WorkDoneProgressCancelNotification,
    WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';
import { InlineSuggestions } from './inline';
import { SECTION, ServerLaunch, serverLaunch, serverSettings } from './settings';
import { StatusItem } from './status';

export const STATUS_COMMAND = 'codeassist.status';

/** The server command could not be found: the message says which setting to fix. */
export class LaunchError extends Error {}

/** Every document the server may complete: files and unsaved editors. */
const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-remote' }];

/** `command` as an absolute path, or undefined when it is neither a file nor on PATH. */
export function findExecutable(command: string): string | undefined {
    const isFile = (candidate: string) => {
        try {
            fs.accessSync(candidate, fs.constants.X_OK);
            return fs.statSync(candidate).isFile();
        } catch {
            return false;
        }
    };
    if (command.includes('/') || command.includes('\\')) {
        return isFile(command) ? path.resolve(command) : undefined;
    }
    const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
    for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
        for (const ext of extensions) {
            const candidate = path.join(dir, command + ext);
            if (isFile(candidate)) {
                return candidate;
            }
        }
    }
    return undefined;
}

/** Check the launch command up front: a spawn ENOENT from the client is far less clear. */
export function resolveLaunch(launch: ServerLaunch): ServerLaunch {
    const found = findExecutable(launch.command);
    if (!found) {
        throw new LaunchError(
            `codeassist: cannot start the language server: "${launch.command}" (from ${launch.origin}) was not found. ` +
            'Install the server (`pip install codeassist-lsp`, or `./dev.sh` in its repository) and set ' +
            '"codeassist.server.command" (e.g. ["/path/to/.venv/bin/codeassist-lsp"]) or "codeassist.server.interpreter".');
    }
    return { ...launch, command: found };
}

/** One language client at a time, with its status bar item and output channels. */
export class ServerManager implements vscode.Disposable {
    client: LanguageClient | undefined;
    private readonly activeProgress = new Set<string | number>();
    private readonly clientDisposables: vscode.Disposable[] = [];

    constructor(
        private readonly output: vscode.LogOutputChannel,
        private readonly traceOutput: vscode.LogOutputChannel,
        readonly status: StatusItem,
        /** The server's setting keys (settings.ts `serverKeys`). */
        private readonly settingKeys: readonly string[],
    ) {}

    /** Start the server (stopping the one running); errors end up in the status bar and a message. */
    async start(): Promise<void> {
        await this.stop();
        this.status.starting();
        let launch: ServerLaunch;
        try {
            launch = resolveLaunch(serverLaunch());
        } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            this.output.error(message);
            this.status.error('server not found');
            void vscode.window.showErrorMessage(message, 'Open Settings', 'Show Output').then((choice) => {
                if (choice === 'Open Settings') {
                    void vscode.commands.executeCommand('workbench.action.openSettings', 'codeassist.server');
                } else if (choice === 'Show Output') {
                    this.output.show();
                }
            });
            return;
        }
        this.output.info(`starting ${launch.command} ${launch.args.join(' ')}`);
        const serverOptions: ServerOptions = {
            command: launch.command,
            args: launch.args,
            transport: TransportKind.stdio,
            options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: DOCUMENT_SELECTOR,
            initializationOptions: serverSettings(this.settingKeys),
            outputChannel: this.output,
            traceOutputChannel: this.traceOutput,
            // Changes are pushed by `pushSettings` (only the server's keys: it rejects unknown ones).
            synchronize: {},
            // Inline suggestions come from our own provider (inline.ts), which also reports shows and
            // partial accepts; the client's provider, registered for the same capability, stays silent.
            middleware: { provideInlineCompletionItems: () => undefined },
        };
        const client = new LanguageClient(SECTION, 'codeassist', serverOptions, clientOptions);
        this.client = client;
        // The server offers "codeassist: Change the workspace…" in the code-action menu only to clients
        // that have the command asking for the instruction (extension.ts's codeassist.changeWorkspace).
        client.registerFeature({
            fillClientCapabilities(capabilities) {
                capabilities.experimental = { ...(capabilities.experimental ?? {}), codeassist: { changeWorkspace: true } };
            },
            initialize() {},
            getState() { return { kind: 'static' }; },
            clear() {},
        });
        this.clientDisposables.push(client.onDidChangeState((event) => {
            if (event.newState === State.Stopped && this.client === client) {
                this.status.error('server stopped');
            }
        }));
        try {
            await client.start();
        } catch (error) {
            const message = `codeassist: the language server failed to start: ${error instanceof Error ? error.message : error}`;
            this.output.error(message);
            this.status.error('failed to start');
            void vscode.window.showErrorMessage(message, 'Show Output').then((choice) => {
                if (choice) {
                    this.output.show();
                }
            });
            return;
        }
        this.clientDisposables.push(
            vscode.languages.registerInlineCompletionItemProvider(DOCUMENT_SELECTOR, new InlineSuggestions(client)));
        this.watchServer(client);
        await this.refreshStatus();
    }

    /** Mirror `$/progress` (model load, indexing) and error messages into the status bar. */
    private watchServer(client: LanguageClient): void {
        this.clientDisposables.push(client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
            this.activeProgress.add(token);
            let report: ((value: { message?: string }) => void) | undefined;
            let finish: () => void = () => undefined;
            const listener = client.onProgress(WorkDoneProgress.type, token, (value) => {
                if (value.kind === 'begin') {
                    // Model loading shows in the status bar; cancellable work (code actions) as a notification.
                    const location = value.cancellable ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window;
                    void vscode.window.withProgress({ location, title: value.title, cancellable: !!value.cancellable },
                        (progress, cancel) => new Promise<void>((resolve) => {
                            report = (update) => progress.report(update);
                            finish = resolve;
                            cancel.onCancellationRequested(() => {
                                void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
                            });
                            report({ message: value.message });
                        }));
                }
                if (value.kind === 'end') {
                    listener.dispose();
                    this.activeProgress.delete(token);
                    finish();
                    void this.refreshStatus();
                    return;
                }
                report?.({ message: value.message });
                const message = value.message ?? (value.kind === 'begin' ? value.title : 'working…');
                this.status.loading(message, value.percentage, /loading model/i.test(message) ? 'loading' : 'working');
            });
            this.clientDisposables.push(listener, { dispose: () => finish() });
        }));
        this.clientDisposables.push(client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
            if (type === MessageType.Error) {
                this.status.error(message.replace(/^codeassist:\s*/, ''));
                void vscode.window.showErrorMessage(message, 'Show Status', 'Show Output').then((choice) => {
                    if (choice === 'Show Status') {
                        void vscode.commands.executeCommand('codeassist.showStatus');
                    } else if (choice === 'Show Output') {
                        this.output.show();
                    }
                });
            } else if (type === MessageType.Warning) {
                void vscode.window.showWarningMessage(message);
            } else {
                void vscode.window.showInformationMessage(message);
            }
        }));
    }

    /** The server's `codeassist.status` report (model state, settings, counters). */
    async statusReport(): Promise<StatusReport | undefined> {
        const client = this.client;
        if (!client || client.state !== State.Running) {
            return undefined;
        }
        return client.sendRequest(ExecuteCommandRequest.type, { command: STATUS_COMMAND, arguments: [] }) as Promise<StatusReport>;
    }

    /** Ask the server what state the model is in and show it. */
    async refreshStatus(): Promise<void> {
        try {
            const report = await this.statusReport();
            if (!report) {
                return;
            }
            const model = report.model;
            if (model.state === 'error') {
                this.status.error(model.error ?? 'model failed to load');
            } else if (model.state === 'loading') {
                if (this.activeProgress.size === 0) {
                    this.status.loading('Loading model…');
                    setTimeout(() => void this.refreshStatus(), 1000);
                }
            } else if (this.activeProgress.size === 0) {
                this.status.ready(model.id ?? 'model', report.settings?.completion?.enabled ?? true);
            }
        } catch (error) {
            this.output.warn(`codeassist.status failed: ${error instanceof Error ? error.message : error}`);
        }
    }

    /** Tell the running server the current settings (workspace/didChangeConfiguration). */
    async pushSettings(): Promise<void> {
        const client = this.client;
        if (client?.state === State.Running) {
            await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: serverSettings(this.settingKeys) } });
            await this.refreshStatus();
        }
    }

    async stop(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        this.clientDisposables.splice(0).forEach((d) => d.dispose());
        this.activeProgress.clear();
        if (client) {
            try {
                await client.stop(5000);
            } catch (error) {
                this.output.warn(`stopping the server: ${error instanceof Error ? error.message : error}`);
            }
        }
    }

    dispose(): void {
        void this.stop();
    }
}

/** The part of the `codeassist.status` report the extension reads. */
export interface StatusReport {
    model: { state: 'loading' | 'ready' | 'error'; id: string | null; error: string | null };
    settings?: { completion?: { enabled?: boolean } };
    stats?: Record<string, number>;
    [key: string]: unknown;
}
