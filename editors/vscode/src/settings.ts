// Typed settings: what starts the server (client-only) and what the server is told (its typed
// settings, camelCase, under the `codeassist` section). The server rejects unknown keys, so only
// the server's own keys are ever sent.
import * as vscode from 'vscode';

export const SECTION = 'codeassist';

/** How to start the language server. */
export interface ServerLaunch {
    command: string;
    args: string[];
    /** Where the command came from, for error messages. */
    origin: string;
}

/** Settings only the extension reads (how to start the server); never sent to the server. */
const CLIENT_ONLY = /^codeassist\.(server|trace)\./;

/** The server's setting keys (e.g. `model.path`), from the extension's contributed configuration. */
export function serverKeys(packageJSON: { contributes?: { configuration?: { properties?: Record<string, unknown> } } }): string[] {
    return Object.keys(packageJSON.contributes?.configuration?.properties ?? {})
        .filter((key) => key.startsWith(`${SECTION}.`) && !CLIENT_ONLY.test(key))
        .map((key) => key.slice(SECTION.length + 1));
}

/** The command that starts the server: an explicit command, an interpreter, or codeassist-lsp on PATH. */
export function serverLaunch(config = vscode.workspace.getConfiguration(SECTION)): ServerLaunch {
    const verbosity = { warning: [], info: ['-v'], debug: ['-vv'] }[config.get<string>('server.logLevel', 'warning')] ?? [];
    const command = config.get<string[]>('server.command', []).filter((part) => part.length > 0);
    if (command.length > 0) {
        return { command: command[0], args: [...command.slice(1), ...verbosity], origin: 'codeassist.server.command' };
    }
    const interpreter = config.get<string>('server.interpreter', '').trim();
    if (interpreter) {
        return { command: interpreter, args: ['-m', 'codeassist_lsp', ...verbosity], origin: 'codeassist.server.interpreter' };
    }
    return { command: 'codeassist-lsp', args: [...verbosity], origin: 'the default (codeassist-lsp on PATH)' };
}

/**
 * The server's settings (camelCase, nested like codeassist_lsp/config.py) with only the values the
 * user set: the server fills in its own defaults, and a setting a user never touched cannot make an
 * older server reject the whole object (it refuses unknown keys).
 */
export function serverSettings(keys: readonly string[], scope?: vscode.ConfigurationScope): Record<string, unknown> {
    const config = vscode.workspace.getConfiguration(SECTION, scope);
    const settings: Record<string, unknown> = {};
    for (const key of keys) {
        const inspected = config.inspect(key);
        const value = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
        if (value === undefined || value === '') {
            continue;  // "" is how a user clears a path setting: the server's default is null
        }
        const parts = key.split('.');
        let node = settings;
        for (const part of parts.slice(0, -1)) {
            node = (node[part] ??= {}) as Record<string, unknown>;
        }
        node[parts[parts.length - 1]] = value;
    }
    return settings;
}

/** Whether a configuration change needs the server process restarted (not just new settings). */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
    return ['server.command', 'server.interpreter', 'server.logLevel']
        .some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}

/** Whether a configuration change touches what the server is told. */
export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration(SECTION) && !needsRestart(event) &&
        !event.affectsConfiguration(`${SECTION}.trace`);
}
