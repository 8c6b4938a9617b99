// DOM building for the page. Text always goes in through text nodes; the only HTML strings the page
// inserts are made by mrkdwn.js from escaped text, or previews the server rendered with raw HTML off.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// `html` must come from escapeHtml-based rendering (mrkdwn.js) or the server's sanitised previews.
export function trustedHtml(tag, className, html) {
  const el = document.createElement(tag);
  el.className = className;
  el.innerHTML = html;
  return el;
}

export function initials(name) {
  return (name || '?').trim().charAt(0).toUpperCase() || '?';
}

const AVATAR_COLOURS = ['#e8912d', '#2bac76', '#1d9bd1', '#e01e5a', '#4a154b', '#611f69', '#0b4c8c', '#9f5a00'];

export function avatarColour(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return AVATAR_COLOURS[hash % AVATAR_COLOURS.length];
}

export function timeOf(ts) {
  const date = new Date(parseFloat(ts) * 1000);
  return date.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
}

export function fullTimeOf(ts) {
  return new Date(parseFloat(ts) * 1000).toLocaleString();
}
