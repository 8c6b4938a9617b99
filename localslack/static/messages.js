// One message as Slack shows it (author, time, text or blocks, files, reactions, thread summary, hover
// toolbar), and a keyed list that only rebuilds the messages whose data changed.

import { avatarColour, fullTimeOf, h, initials, timeOf, trustedHtml } from './dom.js';
import { emojiChar } from './emoji.js';
import { renderAttachments, renderBlocks } from './blocks.js';
import { mrkdwnHtml } from './mrkdwn.js';

export const QUICK_REACTIONS = ['pushpin', 'memo', 'dart', 'eyes', 'white_check_mark'];
const MARKDOWN_TYPES = new Set(['md', 'markdown']);

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function fileCard(file) {
  const kind = MARKDOWN_TYPES.has(file.filetype) ? 'Markdown' : file.filetype.toUpperCase();
  const card = h('div', { class: 'file', 'data-testid': 'file', 'data-name': file.name, 'data-file-id': file.id },
    h('div', { class: 'file-head' },
      h('span', { class: 'file-icon', 'aria-hidden': 'true' }, MARKDOWN_TYPES.has(file.filetype) ? '📝' : '📄'),
      h('div', { class: 'file-info' },
        h('div', { class: 'file-title' }, file.title || file.name),
        h('div', { class: 'file-meta' }, `${kind} · ${size(file.size)}`)),
      h('a', { class: 'file-download', href: file.url, download: file.name, 'data-testid': 'file-download' }, 'Download')));
  if (file.preview_html !== null && file.preview_html !== undefined) {
    const preview = trustedHtml('div', 'file-preview markdown-body', file.preview_html);
    preview.setAttribute('data-testid', 'file-preview');
    for (const link of preview.querySelectorAll('a')) {
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
    }
    card.append(h('details', { class: 'file-preview-wrap', open: true }, h('summary', {}, 'Preview'), preview));
  }
  return card;
}

function reactionChips(msg, ctx) {
  if (!msg.reactions.length) return null;
  return h('div', { class: 'reactions' }, msg.reactions.map((r) => {
    const mine = r.users.includes(ctx.meId);
    const who = r.users.map((id) => ctx.dir.userName(id) ?? id).join(', ');
    return h('button', {
      type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'data-testid': 'reaction', 'data-name': r.name,
      'data-count': r.count, 'aria-pressed': String(mine), title: `${who} reacted with :${r.name}:`,
      onclick: () => ctx.react(msg, r.name, !mine),
    }, h('span', { class: 'reaction-emoji' }, emojiChar(r.name) ?? `:${r.name}:`), h('span', { class: 'reaction-count' }, String(r.count)));
  }));
}

function threadSummary(msg, ctx) {
  if (ctx.inThread || !msg.reply_count) return null;
  const faces = msg.reply_users.slice(0, 5).map((id) => {
    const name = ctx.dir.userName(id) ?? id;
    const face = h('span', { class: 'mini-avatar', title: name }, initials(name));
    face.style.background = avatarColour(id);
    return face;
  });
  return h('div', { class: 'thread-summary' }, faces,
    h('button', { type: 'button', class: 'thread-link', 'data-testid': 'open-thread', onclick: () => ctx.openThread(msg) },
      `${msg.reply_count} ${msg.reply_count === 1 ? 'reply' : 'replies'}`),
    msg.latest_reply ? h('span', { class: 'thread-last' }, `Last reply ${timeOf(msg.latest_reply)}`) : null);
}

function toolbar(msg, ctx) {
  if (msg.ephemeral) return null;
  const mine = (name) => msg.reactions.some((r) => r.name === name && r.users.includes(ctx.meId));
  return h('div', { class: 'message-actions', 'data-testid': 'message-actions', role: 'toolbar', 'aria-label': 'Message actions' },
    QUICK_REACTIONS.map((name) => h('button', {
      type: 'button', class: 'tool', 'data-testid': 'react', 'data-name': name, title: `React with :${name}:`,
      onclick: () => ctx.react(msg, name, !mine(name)),
    }, emojiChar(name))),
    ctx.inThread ? null : h('button', { type: 'button', class: 'tool', 'data-testid': 'reply', title: 'Reply in thread', onclick: () => ctx.openThread(msg) }, '💬'),
    h('button', {
      type: 'button', class: 'tool', 'data-testid': 'pin', 'aria-pressed': String(msg.pinned),
      title: msg.pinned ? 'Unpin from channel' : 'Pin to channel', onclick: () => ctx.pin(msg, !msg.pinned),
    }, msg.pinned ? '📌 Unpin' : '📌 Pin'));
}

export function renderMessage(msg, ctx) {
  const author = msg.author;
  const blockCtx = { ...ctx, act: (el, blockId, value) => ctx.act(msg, el, blockId, value) };
  const avatar = h('div', { class: `avatar${author.is_bot ? ' bot' : ''}`, 'aria-hidden': 'true' }, initials(author.label));
  avatar.style.background = author.is_bot ? '#1d3557' : avatarColour(author.id ?? author.name);
  const content = h('div', { class: 'message-content' });
  if (msg.blocks.length) content.append(renderBlocks(msg.blocks, blockCtx));
  else if (msg.text) content.append(trustedHtml('div', 'message-text', mrkdwnHtml(msg.text, ctx.dir)));
  if (msg.edited) content.append(h('span', { class: 'edited' }, '(edited)'));
  return h('div', {
    class: `message${msg.ephemeral ? ' ephemeral' : ''}${msg.pinned ? ' pinned' : ''}`,
    'data-testid': 'message', 'data-ts': msg.ts, 'data-user': msg.user,
    'data-ephemeral': String(msg.ephemeral), 'data-pinned': String(msg.pinned),
  },
  avatar,
  h('div', { class: 'message-body' },
    msg.pinned ? h('div', { class: 'pinned-label' }, '📌 Pinned') : null,
    msg.subtype === 'thread_broadcast' && !ctx.inThread ? h('div', { class: 'broadcast-label' }, 'replied to a thread') : null,
    h('div', { class: 'message-meta' },
      h('span', { class: 'author' }, author.label),
      author.is_bot ? h('span', { class: 'app-badge' }, 'APP') : null,
      h('time', { class: 'message-time', title: fullTimeOf(msg.ts) }, timeOf(msg.ts))),
    content,
    renderAttachments(msg.attachments, blockCtx),
    msg.files.length ? h('div', { class: 'files' }, msg.files.map(fileCard)) : null,
    msg.ephemeral ? h('div', { class: 'ephemeral-label', 'data-testid': 'ephemeral-label' }, '👁 Only visible to you') : null,
    reactionChips(msg, ctx),
    threadSummary(msg, ctx)),
  toolbar(msg, ctx));
}

// Rebuilding every message on each refresh would reset hover state, open menus and half-made
// selections; only messages whose data (or the viewer) changed are re-rendered.
export class MessageList {
  constructor(root) {
    this.root = root;
    this.entries = new Map();
  }

  reset() {
    for (const entry of this.entries.values()) entry.node.remove();
    this.entries = new Map();
  }

  update(messages, ctx) {
    const next = new Map();
    let previous = null;
    for (const msg of messages) {
      const key = `${msg.ephemeral ? 'e' : 'm'}${msg.ts}`;
      const signature = `${ctx.signature}|${JSON.stringify(msg)}`;
      let entry = this.entries.get(key);
      if (!entry || entry.signature !== signature) {
        const node = renderMessage(msg, ctx);
        if (entry) entry.node.replaceWith(node);
        entry = { signature, node };
      }
      next.set(key, entry);
      const expected = previous ? previous.nextSibling : this.root.firstChild;
      if (expected !== entry.node) this.root.insertBefore(entry.node, expected);
      previous = entry.node;
    }
    for (const [key, entry] of this.entries) if (!next.has(key)) entry.node.remove();
    this.entries = next;
  }
}
