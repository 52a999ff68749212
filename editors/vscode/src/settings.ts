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

/** The server's settings as it reads them (codeassist_lsp/config.py). */
export interface ServerSettings {
    engine: string;
    model: {
        name: string;
        path: string | null;
        contextSize: number;
        threads: number;
        gpuLayers: number;
        batchSize: number;
    };
    completion: {
        enabled: boolean;
        debounceMs: number;
        maxTokens: number;
        maxBlockTokens: number;
        maxBlockLines: number;
        contextTokens: number;
        prewarm: boolean;
        disabledLanguages: string[];
    };
    context: {
        indexWorkspace: boolean;
        exclude: string[];
    };
    security: {
        enabled: boolean;
        onHighSeverity: string;
        diagnostics: boolean;
    };
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

/** The server's settings from the VS Code configuration (for a resource, when given). */
export function serverSettings(scope?: vscode.ConfigurationScope): ServerSettings {
    const c = vscode.workspace.getConfiguration(SECTION, scope);
    return {
        engine: c.get('engine', 'llama'),
        model: {
            name: c.get('model.name', 'gemma-3-270m'),
            path: c.get<string>('model.path', '').trim() || null,
            contextSize: c.get('model.contextSize', 4096),
            threads: c.get('model.threads', 0),
            gpuLayers: c.get('model.gpuLayers', -1),
            batchSize: c.get('model.batchSize', 512),
        },
        completion: {
            enabled: c.get('completion.enabled', true),
            debounceMs: c.get('completion.debounceMs', 40),
            maxTokens: c.get('completion.maxTokens', 24),
            maxBlockTokens: c.get('completion.maxBlockTokens', 96),
            maxBlockLines: c.get('completion.maxBlockLines', 8),
            contextTokens: c.get('completion.contextTokens', 1536),
            prewarm: c.get('completion.prewarm', true),
            disabledLanguages: c.get('completion.disabledLanguages', []),
        },
        context: {
            indexWorkspace: c.get('context.indexWorkspace', true),
            exclude: c.get('context.exclude', []),
        },
        security: {
            enabled: c.get('security.enabled', true),
            onHighSeverity: c.get('security.onHighSeverity', 'withhold'),
            diagnostics: c.get('security.diagnostics', true),
        },
    };
}

/** Whether a configuration change needs the server process restarted (not just new settings). */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
    return ['server.command', 'server.interpreter', 'server.logLevel']
        .some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}

/** Whether a configuration change touches what the server is told. */
export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
    return ['engine', 'model', 'completion', 'context', 'security']
        .some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}
