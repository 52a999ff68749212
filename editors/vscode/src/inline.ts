// The inline completion provider: asks the server (textDocument/inlineCompletion) as the language
// client's own provider would, and forwards what only VS Code knows to the server's acceptance
// tracking: which suggestion is on screen and which part of it the user accepted (accept word /
// accept line). Those two callbacks are VS Code's proposed API `inlineCompletionsAdditions`: VS Code
// calls them only when it lets this extension use the proposal (Insiders, code-server or VSCodium
// started with `--enable-proposed-api codeassist.codeassist`); otherwise the server infers outcomes
// from the edits alone, as it does for every other editor.
import * as vscode from 'vscode';
import { InlineCompletionRequest, LanguageClient } from 'vscode-languageclient/node';

/** The server's command on an inline item; its first argument is the suggestion's id. */
export const ACCEPTED_COMMAND = 'codeassist.suggestionAccepted';
export const DID_SHOW = 'codeassist/didShowCompletion';
export const DID_PARTIALLY_ACCEPT = 'codeassist/didPartiallyAcceptCompletion';

/** The proposal's partial-accept details (VS Code >= 1.84); older builds pass only the length. */
interface PartialAcceptInfo {
    kind: number;
    acceptedLength: number;
}

/** The proposal's PartialAcceptTriggerKind: 1 word, 2 line. */
const PARTIAL_KINDS: Record<number, string> = { 1: 'word', 2: 'line' };

/** The suggestion id the server put on an item ('' for items from elsewhere). */
export function suggestionId(item: vscode.InlineCompletionItem): string {
    const command = item.command;
    const id = command && command.command === ACCEPTED_COMMAND ? command.arguments?.[0] : undefined;
    return typeof id === 'string' ? id : '';
}

export class InlineSuggestions implements vscode.InlineCompletionItemProvider {
    constructor(private readonly client: LanguageClient) {}

    async provideInlineCompletionItems(document: vscode.TextDocument, position: vscode.Position,
        context: vscode.InlineCompletionContext, token: vscode.CancellationToken,
    ): Promise<vscode.InlineCompletionItem[] | vscode.InlineCompletionList | undefined | null> {
        const client = this.client;
        try {
            const result = await client.sendRequest(InlineCompletionRequest.type,
                client.code2ProtocolConverter.asInlineCompletionParams(document, position, context), token);
            return token.isCancellationRequested ? null : client.protocol2CodeConverter.asInlineCompletionResult(result, token);
        } catch (error) {
            return client.handleFailedRequest(InlineCompletionRequest.type, token, error, null);
        }
    }

    /** Proposed API: VS Code shows this item now. */
    handleDidShowCompletionItem(item: vscode.InlineCompletionItem): void {
        const id = suggestionId(item);
        if (id) {
            void this.client.sendNotification(DID_SHOW, { id });
        }
    }

    /** Proposed API: the user accepted part of the item (a word, a line). */
    handleDidPartiallyAcceptCompletionItem(item: vscode.InlineCompletionItem, info: number | PartialAcceptInfo): void {
        const id = suggestionId(item);
        if (id) {
            const details = typeof info === 'number' ? { kind: 0, acceptedLength: info } : info;
            void this.client.sendNotification(DID_PARTIALLY_ACCEPT,
                { id, kind: PARTIAL_KINDS[details.kind] ?? '', acceptedLength: details.acceptedLength });
        }
    }
}
