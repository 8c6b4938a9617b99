// A message box: Enter sends, Shift+Enter adds a line, and "/..." offers the app's slash commands.

import { clear, h } from './dom.js';

const COMMAND_PREFIX = /^\/\S*$/;

function matches(commands, typed) {
  const needle = typed.toLowerCase();
  const starts = commands.filter((c) => c.command.startsWith(needle));
  const contains = commands.filter((c) => !c.command.startsWith(needle) && c.command.includes(needle.slice(1)));
  return [...starts, ...contains];
}

export class Composer {
  // send(text) -> Promise<boolean>; commands() -> [{command, description, usage_hint}]; `list` is the
  // autocomplete element (only the channel composer has one).
  constructor(textarea, { send, commands = () => [], list = null }) {
    this.textarea = textarea;
    this.send = send;
    this.commands = commands;
    this.list = list;
    this.items = [];
    this.active = 0;
    textarea.addEventListener('input', () => {
      this.grow();
      this.suggest();
    });
    textarea.addEventListener('keydown', (event) => this.keydown(event));
    textarea.addEventListener('blur', () => setTimeout(() => this.hide(), 150));
  }

  grow() {
    this.textarea.style.height = 'auto';
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, 200)}px`;
  }

  get open() {
    return Boolean(this.list && !this.list.hidden && this.items.length);
  }

  suggest() {
    if (!this.list) return;
    const typed = this.textarea.value;
    this.items = COMMAND_PREFIX.test(typed) ? matches(this.commands(), typed) : [];
    this.active = 0;
    this.draw();
  }

  draw() {
    clear(this.list);
    this.list.hidden = this.items.length === 0;
    this.items.forEach((c, i) => {
      const item = h('div', {
        class: `autocomplete-item${i === this.active ? ' active' : ''}`, role: 'option', 'aria-selected': String(i === this.active),
        'data-testid': 'autocomplete-item', 'data-command': c.command,
      },
      h('div', { class: 'autocomplete-line' }, h('span', { class: 'autocomplete-command' }, c.command), c.usage_hint ? h('span', { class: 'autocomplete-hint' }, c.usage_hint) : null),
      c.description ? h('div', { class: 'autocomplete-description' }, c.description) : null);
      // mousedown, not click: the textarea's blur would hide the list before a click lands.
      item.addEventListener('mousedown', (event) => {
        event.preventDefault();
        this.complete(c);
      });
      this.list.append(item);
    });
  }

  hide() {
    if (!this.list) return;
    this.items = [];
    this.list.hidden = true;
  }

  complete(command) {
    this.textarea.value = `${command.command} `;
    this.textarea.focus();
    this.hide();
    this.grow();
  }

  keydown(event) {
    if (event.isComposing) return;
    if (this.open) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        this.active = (this.active + step + this.items.length) % this.items.length;
        this.draw();
        return;
      }
      if (event.key === 'Escape') {
        this.hide();
        return;
      }
      const chosen = this.items[this.active];
      if (event.key === 'Tab' || (event.key === 'Enter' && !event.shiftKey && this.textarea.value.trim() !== chosen.command)) {
        event.preventDefault();
        this.complete(chosen);
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      this.submit();
    }
  }

  async submit() {
    const text = this.textarea.value;
    if (!text.trim()) return;
    this.textarea.value = '';
    this.hide();
    this.grow();
    // Until the emulator answers (a command waits for the app's ack): a hook for tests to wait on.
    this.textarea.dataset.busy = 'true';
    try {
      const sent = await this.send(text.trim());
      // Like Slack, a refused message or command comes back into the box to be fixed.
      if (!sent && !this.textarea.value) {
        this.textarea.value = text;
        this.grow();
      }
    } finally {
      delete this.textarea.dataset.busy;
    }
  }
}
