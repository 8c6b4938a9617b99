// Slack's mrkdwn (not Markdown) to safe HTML. Message text arrives Slack-escaped (&amp; &lt; &gt;), and
// the only literal angle brackets are Slack's references: <@U1>, <#C1|name>, <url|label>, <!here>...
// Every piece of text is HTML-escaped before any tag is added around it.

import { replaceEmoji } from './emoji.js';

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const SLACK_ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>' };
const SAFE_URL = /^(https?:\/\/|mailto:|tel:)/i;
const BROADCASTS = new Set(['here', 'channel', 'everyone']);
const MARK = '\u0000';

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

export function decodeSlack(text) {
  return String(text).replace(/&(amp|lt|gt);/g, (entity) => SLACK_ENTITIES[entity]);
}

// What a reference reads as (@alice, #general, a link's label...), still Slack-escaped.
function referenceLabel(inner, dir) {
  const bar = inner.indexOf('|');
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? '' : inner.slice(bar + 1);
  if (target.startsWith('@')) return { kind: 'user', id: target.slice(1), text: `@${dir.userName(target.slice(1)) ?? (label || target.slice(1))}` };
  if (target.startsWith('#')) return { kind: 'channel', id: target.slice(1), text: `#${dir.channelName(target.slice(1)) ?? (label || target.slice(1))}` };
  if (target.startsWith('!subteam^')) {
    const id = target.slice('!subteam^'.length);
    return { kind: 'group', id, text: `@${(label || dir.groupHandle(id) || id).replace(/^@/, '')}` };
  }
  if (target.startsWith('!date^')) return { kind: 'date', text: dateLabel(target, label) };
  if (target.startsWith('!')) {
    const name = target.slice(1);
    return { kind: BROADCASTS.has(name) ? 'broadcast' : 'special', text: BROADCASTS.has(name) ? `@${name}` : (label || name) };
  }
  if (SAFE_URL.test(decodeSlack(target))) return { kind: 'link', url: decodeSlack(target), text: label || target };
  return { kind: 'text', text: `&lt;${inner}&gt;` };
}

function dateLabel(target, fallback) {
  const seconds = Number(target.split('^')[1]);
  if (!Number.isFinite(seconds)) return decodeSlack(fallback);
  return new Date(seconds * 1000).toLocaleString();
}

function referenceHtml(inner, dir) {
  const ref = referenceLabel(inner, dir);
  const text = escapeHtml(decodeSlack(ref.text));
  switch (ref.kind) {
    case 'user': {
      const me = ref.id === dir.meId ? ' me' : '';
      return `<span class="mention${me}" data-user-id="${escapeHtml(ref.id)}">${text}</span>`;
    }
    case 'group':
    case 'broadcast':
      return `<span class="mention ${ref.kind}">${text}</span>`;
    case 'channel': {
      const name = ref.text.slice(1);
      return `<a class="channel-ref" href="#channel=${encodeURIComponent(name)}">${text}</a>`;
    }
    case 'link':
      return `<a href="${escapeHtml(ref.url)}" target="_blank" rel="noopener noreferrer">${text}</a>`;
    default:
      return text;
  }
}

// Text with references reduced to what they read as, for code spans and blocks.
function plain(text, dir) {
  return decodeSlack(String(text).replace(/<([^<>\n]*)>/g, (_, inner) => referenceLabel(inner, dir).text));
}

const STYLES = [
  [/(^|[^\w*])\*(?!\s)([^*\n]*?[^\s*])\*(?![\w*])/g, 'b'],
  [/(^|[^\w_])_(?!\s)([^_\n]*?[^\s_])_(?![\w_])/g, 'i'],
  [/(^|[^\w~])~(?!\s)([^~\n]*?[^\s~])~(?![\w~])/g, 's'],
];

function styled(text) {
  let out = text;
  for (const [pattern, tag] of STYLES) out = out.replace(pattern, `$1<${tag}>$2</${tag}>`);
  return out;
}

function joinLines(lines) {
  // Lines starting with ">" are quoted; ">>>" quotes everything after it.
  const parts = [];
  let quote = null;
  let rest = false;
  for (const line of lines) {
    const triple = !rest && /^&gt;&gt;&gt;\s?(.*)$/.exec(line);
    if (triple) rest = true;
    const single = !rest && /^&gt;\s?(.*)$/.exec(line);
    const quoted = triple ? triple[1] : rest ? line : single ? single[1] : null;
    if (quoted !== null) {
      if (!quote) parts.push((quote = { quote: [] }));
      quote.quote.push(quoted);
    } else {
      quote = null;
      parts.push({ line });
    }
  }
  let html = '';
  parts.forEach((part, i) => {
    if (part.quote) html += `<blockquote>${part.quote.join('<br>')}</blockquote>`;
    else html += (i > 0 && !parts[i - 1].quote ? '<br>' : '') + part.line;
  });
  return html;
}

export function mrkdwnHtml(text, dir) {
  const stash = [];
  const keep = (html, block = false) => `${MARK}${stash.push({ html, block }) - 1}${MARK}`;
  let s = String(text ?? '').replaceAll(MARK, '');
  s = s.replace(/```\n?([\s\S]*?)\n?```/g, (_, body) => keep(`<pre class="pre">${escapeHtml(plain(body, dir))}</pre>`, true));
  s = s.replace(/`([^`\n]+)`/g, (_, body) => keep(`<code>${escapeHtml(plain(body, dir))}</code>`));
  s = s.replace(/<([^<>\n]*)>/g, (_, inner) => keep(referenceHtml(inner, dir)));
  s = replaceEmoji(styled(escapeHtml(decodeSlack(s))));
  s = joinLines(s.split('\n'));
  s = s.replace(new RegExp(`(<br>)?${MARK}(\\d+)${MARK}(<br>)?`, 'g'), (whole, before, index, after) => {
    const entry = stash[Number(index)];
    return entry.block ? entry.html : `${before ?? ''}${entry.html}${after ?? ''}`;
  });
  return s;
}

// plain_text objects: shown as written; `emoji: false` keeps :names: as typed.
export function plainHtml(text, emoji = true) {
  const escaped = escapeHtml(text ?? '');
  return emoji ? replaceEmoji(escaped) : escaped;
}

export function textObjectHtml(obj, dir) {
  if (!obj || typeof obj !== 'object') return '';
  return obj.type === 'mrkdwn' ? mrkdwnHtml(obj.text, dir) : plainHtml(obj.text, obj.emoji !== false);
}
