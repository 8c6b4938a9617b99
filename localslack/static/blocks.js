// Block Kit renderer for messages and modals. Interactive elements carry data-action-id/data-block-id;
// modal inputs also carry data-input so modal.js can read them back in the shape the driver expects.

import { emojiChar, replaceEmoji } from './emoji.js';
import { h, trustedHtml } from './dom.js';
import { textObjectHtml } from './mrkdwn.js';

const SAFE_LINK = /^(https?:\/\/|mailto:|tel:)/i;
// Only images served from this machine are loaded: the page promises nothing leaves it.
const LOCAL_IMAGE = /^(data:image\/|\/(?!\/)|https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\/)/i;
let uniqueId = 0;

function plainString(obj) {
  if (!obj) return '';
  const text = String(obj.text ?? '');
  return obj.type === 'plain_text' && obj.emoji !== false ? replaceEmoji(text) : text;
}

function textNode(obj, ctx, tag = 'span', className = 'bk-text') {
  return trustedHtml(tag, className, textObjectHtml(obj, ctx.dir));
}

export function unsupported(type, why = 'unsupported block') {
  return h('div', { class: 'unsupported', 'data-testid': 'unsupported-block' }, `${why}: ${type ?? 'unknown'}`);
}

function ids(el, blockId) {
  return { 'data-action-id': el.action_id ?? '', 'data-block-id': blockId ?? '', 'data-element-type': el.type };
}

async function fire(ctx, el, blockId, value) {
  if (el.confirm && !(await ctx.confirm(el.confirm))) return false;
  await ctx.act(el, blockId, value);
  return true;
}

function image(el, className) {
  const url = el.image_url ?? '';
  if (LOCAL_IMAGE.test(url)) return h('img', { class: className, src: url, alt: el.alt_text ?? '' });
  return h('span', { class: `${className} image-placeholder`, title: url, role: 'img', 'aria-label': el.alt_text ?? '' }, '🖼 ', el.alt_text || 'image');
}

function button(el, blockId, ctx) {
  const node = h('button', { type: 'button', class: `bk-button ${el.style ?? ''}`, title: el.accessibility_label, ...ids(el, blockId) });
  node.textContent = plainString(el.text);
  node.addEventListener('click', async () => {
    if (el.url && SAFE_LINK.test(el.url)) window.open(el.url, '_blank', 'noopener');
    node.disabled = true;
    try {
      await fire(ctx, el, blockId, undefined);
    } finally {
      node.disabled = false;
    }
  });
  return node;
}

function optionNode(opt, selected) {
  return h('option', { value: opt.value, selected }, plainString(opt.text));
}

function selectOptions(el, ctx) {
  const type = el.type.replace(/^multi_/, '');
  if (type === 'users_select') {
    return { options: ctx.users.map((u) => ({ value: u.id, label: u.real_name || u.name })), initial: el.initial_users ?? (el.initial_user ? [el.initial_user] : []) };
  }
  if (type === 'conversations_select' || type === 'channels_select') {
    const initial = el.initial_conversations ?? el.initial_channels ?? [el.initial_conversation ?? el.initial_channel].filter(Boolean);
    return { options: ctx.channels.map((c) => ({ value: c.id, label: c.is_im ? c.label : `#${c.name}` })), initial };
  }
  return null;
}

function select(el, blockId, ctx, live) {
  const multiple = el.type.startsWith('multi_');
  const node = h('select', { class: 'bk-select', multiple, ...ids(el, blockId), 'data-input': '' });
  const directory = selectOptions(el, ctx);
  const initial = directory ? directory.initial : (el.initial_options ?? (el.initial_option ? [el.initial_option] : [])).map((o) => o.value);
  if (!multiple) {
    node.append(h('option', { value: '', disabled: true, selected: initial.length === 0 }, plainString(el.placeholder) || 'Select an item'));
  }
  if (directory) {
    for (const o of directory.options) node.append(h('option', { value: o.value, selected: initial.includes(o.value) }, o.label));
  } else {
    for (const o of el.options ?? []) node.append(optionNode(o, initial.includes(o.value)));
    for (const g of el.option_groups ?? []) {
      node.append(h('optgroup', { label: plainString(g.label) }, (g.options ?? []).map((o) => optionNode(o, initial.includes(o.value)))));
    }
  }
  if (live) {
    node.addEventListener('change', () => fire(ctx, el, blockId, readValue(node)));
  }
  return node;
}

function overflow(el, blockId, ctx) {
  const menu = h('div', { class: 'overflow-menu', role: 'menu', hidden: true });
  const toggle = h('button', { type: 'button', class: 'bk-button overflow', 'aria-haspopup': 'menu', 'aria-label': 'More actions', ...ids(el, blockId) }, '⋯');
  toggle.addEventListener('click', () => { menu.hidden = !menu.hidden; });
  for (const opt of el.options ?? []) {
    const item = h('button', { type: 'button', role: 'menuitem', class: 'overflow-option', 'data-testid': 'overflow-option', 'data-value': opt.value }, plainString(opt.text));
    item.addEventListener('click', () => {
      menu.hidden = true;
      if (opt.url && SAFE_LINK.test(opt.url)) window.open(opt.url, '_blank', 'noopener');
      fire(ctx, el, blockId, opt.value);
    });
    menu.append(item);
  }
  return h('span', { class: 'bk-overflow' }, toggle, menu);
}

function choices(el, blockId, ctx, live) {
  const type = el.type === 'checkboxes' ? 'checkbox' : 'radio';
  const group = h('div', { class: 'bk-choices', role: type === 'checkbox' ? 'group' : 'radiogroup', ...ids(el, blockId), 'data-input': '' });
  const name = `choice-${++uniqueId}`;
  const initial = (el.initial_options ?? (el.initial_option ? [el.initial_option] : [])).map((o) => o.value);
  for (const opt of el.options ?? []) {
    group.append(h('label', { class: 'bk-choice' },
      h('input', { type, name, value: opt.value, checked: initial.includes(opt.value) }),
      h('span', { class: 'bk-choice-text' }, textNode(opt.text, ctx), opt.description ? textNode(opt.description, ctx, 'span', 'bk-choice-description') : null)));
  }
  if (live) group.addEventListener('change', () => fire(ctx, el, blockId, readValue(group)));
  return group;
}

function toLocalDateTime(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function field(el, blockId, ctx, live) {
  const common = { class: 'bk-input', placeholder: plainString(el.placeholder) || null, ...ids(el, blockId), 'data-input': '' };
  let node;
  switch (el.type) {
    case 'plain_text_input':
      node = el.multiline
        ? h('textarea', { ...common, rows: 4, maxlength: el.max_length, minlength: el.min_length })
        : h('input', { ...common, type: 'text', maxlength: el.max_length, minlength: el.min_length });
      node.value = el.initial_value ?? '';
      break;
    case 'email_text_input':
    case 'url_text_input':
      node = h('input', { ...common, type: el.type === 'email_text_input' ? 'email' : 'url' });
      node.value = el.initial_value ?? '';
      break;
    case 'number_input':
      node = h('input', { ...common, type: 'number', step: el.is_decimal_allowed ? 'any' : '1', min: el.min_value, max: el.max_value });
      node.value = el.initial_value ?? '';
      break;
    case 'datepicker':
      node = h('input', { ...common, type: 'date', value: el.initial_date });
      break;
    case 'timepicker':
      node = h('input', { ...common, type: 'time', value: el.initial_time });
      break;
    default:
      node = h('input', { ...common, type: 'datetime-local', value: el.initial_date_time ? toLocalDateTime(el.initial_date_time) : null });
  }
  if (live) node.addEventListener('change', () => fire(ctx, el, blockId, readValue(node)));
  return node;
}

const SELECTS = new Set(['static_select', 'external_select', 'users_select', 'conversations_select', 'channels_select']);
const FIELDS = new Set(['plain_text_input', 'email_text_input', 'url_text_input', 'number_input', 'datepicker', 'timepicker', 'datetimepicker']);

export function element(el, blockId, ctx, { live }) {
  if (!el || typeof el !== 'object') return unsupported(undefined, 'unsupported element');
  const type = String(el.type);
  if (type === 'button' || type === 'workflow_button') return button(el, blockId, ctx);
  if (type === 'image') return image(el, 'bk-image-element');
  if (type === 'overflow') return overflow(el, blockId, ctx);
  if (SELECTS.has(type.replace(/^multi_/, ''))) return select(el, blockId, ctx, live);
  if (type === 'checkboxes' || type === 'radio_buttons') return choices(el, blockId, ctx, live);
  if (FIELDS.has(type)) return field(el, blockId, ctx, live);
  return unsupported(type, 'unsupported element');
}

// The value an input holds, as /ui/api/views/{id}/submit and /ui/api/click take it.
export function readValue(node) {
  const type = node.dataset.elementType;
  if (type === 'checkboxes') return [...node.querySelectorAll('input:checked')].map((i) => i.value);
  if (type === 'radio_buttons') return node.querySelector('input:checked')?.value ?? null;
  if (node.tagName === 'SELECT') {
    if (node.multiple) return [...node.selectedOptions].map((o) => o.value);
    return node.value || null;
  }
  if (type === 'datetimepicker') return node.value ? Math.floor(new Date(node.value).getTime() / 1000) : null;
  return node.value === '' ? null : node.value;
}

export function writeValue(node, value) {
  const type = node.dataset.elementType;
  const values = Array.isArray(value) ? value : value === null || value === undefined ? [] : [value];
  if (type === 'checkboxes' || type === 'radio_buttons') {
    for (const input of node.querySelectorAll('input')) input.checked = values.includes(input.value);
  } else if (node.tagName === 'SELECT') {
    for (const option of node.options) option.selected = values.includes(option.value);
  } else if (type === 'datetimepicker') {
    node.value = values.length ? toLocalDateTime(values[0]) : '';
  } else {
    node.value = values.length ? values[0] : '';
  }
}

function section(b, ctx) {
  const body = h('div', { class: 'section-body' });
  if (b.text) body.append(textNode(b.text, ctx, 'div', 'section-text'));
  if (b.fields?.length) body.append(h('div', { class: 'section-fields' }, b.fields.map((f) => textNode(f, ctx, 'div', 'section-field'))));
  const accessory = b.accessory ? h('div', { class: 'section-accessory' }, element(b.accessory, b.block_id, ctx, { live: true })) : null;
  return h('div', {}, body, accessory);
}

function context(b, ctx) {
  return h('div', {}, (b.elements ?? []).map((e) => (e.type === 'image' ? image(e, 'context-image') : textNode(e, ctx, 'span', 'context-text'))));
}

function imageBlock(b, ctx) {
  return h('figure', {}, b.title ? h('figcaption', { class: 'image-title' }, plainString(b.title)) : null, image(b, 'block-image-img'));
}

function input(b, ctx) {
  const control = element(b.element, b.block_id, ctx, { live: Boolean(b.dispatch_action) });
  const focusable = control.matches('input, textarea, select') ? control : null;
  if (focusable) focusable.id = `input-${++uniqueId}`;
  return h('div', {},
    h('label', { class: 'input-label', for: focusable?.id }, plainString(b.label), b.optional ? h('span', { class: 'optional' }, ' (optional)') : null),
    control,
    b.hint ? h('div', { class: 'input-hint' }, plainString(b.hint)) : null);
}

function codepoints(hex) {
  return String.fromCodePoint(...hex.split('-').map((c) => parseInt(c, 16)).filter(Number.isFinite));
}

function styled(node, style) {
  let out = node;
  if (!style) return out;
  if (style.code) out = h('code', {}, out);
  if (style.bold) out = h('b', {}, out);
  if (style.italic) out = h('i', {}, out);
  if (style.strike) out = h('s', {}, out);
  return out;
}

function richInline(elements, ctx) {
  return (elements ?? []).map((e) => {
    const dir = ctx.dir;
    let node;
    switch (e.type) {
      case 'text':
        node = document.createTextNode(e.text ?? '');
        break;
      case 'link':
        node = SAFE_LINK.test(e.url ?? '') ? h('a', { href: e.url, target: '_blank', rel: 'noopener noreferrer' }, e.text || e.url) : document.createTextNode(e.text || e.url || '');
        break;
      case 'emoji':
        node = document.createTextNode(e.unicode ? codepoints(e.unicode) : emojiChar(e.name) ?? `:${e.name}:`);
        break;
      case 'user':
        node = h('span', { class: `mention${e.user_id === dir.meId ? ' me' : ''}` }, `@${dir.userName(e.user_id) ?? e.user_id}`);
        break;
      case 'usergroup':
        node = h('span', { class: 'mention group' }, `@${dir.groupHandle(e.usergroup_id) ?? e.usergroup_id}`);
        break;
      case 'channel': {
        const name = dir.channelName(e.channel_id) ?? e.channel_id;
        node = h('a', { class: 'channel-ref', href: `#channel=${encodeURIComponent(name)}` }, `#${name}`);
        break;
      }
      case 'broadcast':
        node = h('span', { class: 'mention broadcast' }, `@${e.range}`);
        break;
      case 'date':
        node = document.createTextNode(e.fallback || new Date(e.timestamp * 1000).toLocaleString());
        break;
      case 'color':
        node = h('span', { class: 'color-ref' }, e.value);
        break;
      default:
        node = document.createTextNode(`[${e.type}]`);
    }
    return styled(node, e.style);
  });
}

function richBlock(e, ctx) {
  switch (e?.type) {
    case 'rich_text_section':
      return h('div', { class: 'rt-section' }, richInline(e.elements, ctx));
    case 'rich_text_list': {
      const list = h(e.style === 'ordered' ? 'ol' : 'ul', { class: `rt-list indent-${Math.min(e.indent ?? 0, 6)}`, start: e.offset ? e.offset + 1 : null });
      for (const item of e.elements ?? []) list.append(h('li', {}, richInline(item.elements, ctx)));
      return list;
    }
    case 'rich_text_preformatted':
      return h('pre', { class: 'pre' }, richInline(e.elements, ctx));
    case 'rich_text_quote':
      return h('blockquote', {}, richInline(e.elements, ctx));
    default:
      return unsupported(e?.type, 'unsupported rich text');
  }
}

const BLOCKS = {
  section,
  header: (b) => h('div', {}, h('h3', { class: 'header-text' }, plainString(b.text))),
  context,
  divider: () => h('div', {}, h('hr')),
  image: imageBlock,
  actions: (b, ctx) => h('div', {}, h('div', { class: 'actions-row' }, (b.elements ?? []).map((e) => element(e, b.block_id, ctx, { live: true })))),
  input,
  rich_text: (b, ctx) => h('div', {}, (b.elements ?? []).map((e) => richBlock(e, ctx))),
  // The server renders markdown blocks (standard Markdown, raw HTML off) into `html`.
  markdown: (b) => trustedHtml('div', 'markdown-body', b.html ?? ''),
};

export function renderBlock(block, ctx) {
  const type = block?.type;
  const render = Object.prototype.hasOwnProperty.call(BLOCKS, type) ? BLOCKS[type] : null;
  if (!render) return unsupported(type);
  let node;
  try {
    node = render(block, ctx);
  } catch (err) {
    console.error('block render failed', block, err);
    return unsupported(type, 'could not render block');
  }
  node.classList.add('block', `block-${type}`);
  if (block.block_id) node.dataset.blockId = block.block_id;
  return node;
}

export function renderBlocks(blocks, ctx) {
  return h('div', { class: 'blocks' }, (blocks ?? []).map((b) => renderBlock(b, ctx)));
}

const ATTACHMENT_COLOURS = { good: '#2eb67d', warning: '#ecb22e', danger: '#e01e5a' };

// Legacy attachments: a coloured bar with pretext, title, text, fields and optional blocks.
export function renderAttachments(attachments, ctx) {
  return (attachments ?? []).map((a) => {
    const colour = ATTACHMENT_COLOURS[a.color] ?? (/^#?[0-9a-f]{6}$/i.test(a.color ?? '') ? `#${a.color.replace('#', '')}` : '#dddddd');
    const box = h('div', { class: 'attachment' },
      a.author_name ? h('div', { class: 'attachment-author' }, a.author_name) : null,
      a.title ? h('div', { class: 'attachment-title' }, a.title_link && SAFE_LINK.test(a.title_link) ? h('a', { href: a.title_link, target: '_blank', rel: 'noopener noreferrer' }, a.title) : a.title) : null,
      a.text ? trustedHtml('div', 'attachment-text', textObjectHtml({ type: 'mrkdwn', text: a.text }, ctx.dir)) : null,
      a.fields?.length ? h('div', { class: 'section-fields' }, a.fields.map((f) => h('div', { class: 'section-field' }, h('b', {}, f.title ?? ''), h('br'), trustedHtml('span', '', textObjectHtml({ type: 'mrkdwn', text: f.value ?? '' }, ctx.dir))))) : null,
      a.blocks?.length ? renderBlocks(a.blocks, ctx) : null,
      a.footer ? h('div', { class: 'attachment-footer' }, a.footer) : null);
    box.style.borderLeftColor = colour;
    return h('div', { class: 'attachment-wrap' }, a.pretext ? trustedHtml('div', 'attachment-pretext', textObjectHtml({ type: 'mrkdwn', text: a.pretext }, ctx.dir)) : null, box);
  });
}
