// The status bar item: starting / loading (with progress) / ready / suggestions off / error.
import * as vscode from 'vscode';

export class StatusItem implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem('codeassist.status', vscode.StatusBarAlignment.Right, 100);
    /** What the item shows, readable by tests and the status command. */
    state = 'starting';

    constructor() {
        this.item.name = 'codeassist';
        this.item.command = 'codeassist.showStatus';
        this.starting();
        this.item.show();
    }

    starting(): void {
        this.set('starting', '$(loading~spin) codeassist', 'Starting the codeassist language server…');
    }

    /** Model loading ('loading') or other server work such as indexing or a code action ('working'). */
    loading(message: string, percentage?: number, state: 'loading' | 'working' = 'loading'): void {
        const pct = percentage === undefined ? '' : ` ${percentage}%`;
        this.set(state, `$(loading~spin) codeassist${pct}`, `codeassist: ${message}`);
    }

    ready(model: string, enabled: boolean): void {
        if (enabled) {
            this.set('ready', '$(sparkle) codeassist', `codeassist: ${model} ready. Click for status and stats.`);
        } else {
            this.set('off', '$(circle-slash) codeassist', `codeassist: ${model} ready; inline suggestions are off.`);
        }
    }

    error(message: string): void {
        this.set('error', '$(error) codeassist', `codeassist: ${message}. Click for status; see the output channel.`);
        this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    }

    private set(state: string, text: string, tooltip: string): void {
        this.state = state;
        this.item.text = text;
        this.item.tooltip = tooltip;
        this.item.backgroundColor = undefined;
        // "codeassist ready", "codeassist loading", ...: for screen readers (and the end-to-end test).
        this.item.accessibilityInformation = { label: `codeassist ${state}: ${tooltip}` };
    }

    dispose(): void {
        this.item.dispose();
    }
}
