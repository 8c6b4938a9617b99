// The top modal of the user's view stack, Slack's confirm dialogs, and reading a view's inputs back.

import { clear, h, trustedHtml } from './dom.js';
import { readValue, renderBlocks, writeValue } from './blocks.js';
import { textObjectHtml } from './mrkdwn.js';

function plainText(obj, fallback) {
  return obj?.text ?? fallback;
}

// {block_id: {action_id: value}} for every input in the view, as the driver's submit_view takes it.
export function collectValues(root) {
  const values = {};
  for (const node of root.querySelectorAll('[data-input]')) {
    const blockId = node.dataset.blockId;
    const actionId = node.dataset.actionId;
    if (!blockId || !actionId) continue;
    (values[blockId] ??= {})[actionId] = readValue(node);
  }
  return values;
}

function restoreValues(root, values) {
  for (const node of root.querySelectorAll('[data-input]')) {
    const held = values[node.dataset.blockId];
    if (held && Object.prototype.hasOwnProperty.call(held, node.dataset.actionId)) writeValue(node, held[node.dataset.actionId]);
  }
}

function applyErrors(body, errors) {
  for (const old of body.querySelectorAll('[data-testid="modal-error"]')) old.remove();
  for (const block of body.querySelectorAll('.block.has-error')) block.classList.remove('has-error');
  for (const [blockId, message] of Object.entries(errors ?? {})) {
    const block = [...body.querySelectorAll('.block[data-block-id]')].find((b) => b.dataset.blockId === blockId);
    const note = h('div', { class: 'modal-error', 'data-testid': 'modal-error', 'data-block-id': blockId, role: 'alert' }, message);
    if (block) {
      block.classList.add('has-error');
      block.append(note);
    } else {
      body.prepend(note);
    }
  }
}

export class ModalHost {
  // handlers: { submit(view, values) -> Promise<{view_errors}>, close(view), act(view, el, blockId, value) }
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.shown = null;
    this.body = null;
  }

  show(view, ctx) {
    if (!view) {
      this.shown = null;
      clear(this.root);
      return;
    }
    const same = this.shown && this.shown.id === view.id && this.shown.hash === view.hash;
    if (same) {
      applyErrors(this.body, view.errors);
      this.shown = view;
      return;
    }
    // A views.update keeps what the user already typed into inputs that are still there, as Slack does.
    const carried = this.shown && this.shown.id === view.id && this.body ? collectValues(this.body) : {};
    this.shown = view;
    this.render(view, ctx);
    restoreValues(this.body, carried);
    applyErrors(this.body, view.errors);
  }

  render(view, ctx) {
    const blockCtx = { ...ctx, surface: 'modal', act: (el, blockId, value) => this.handlers.act(view, el, blockId, value) };
    this.body = h('div', { class: 'modal-body' }, renderBlocks(view.blocks, blockCtx));
    const submit = view.submit
      ? h('button', { type: 'submit', class: 'bk-button primary', 'data-testid': 'modal-submit' }, plainText(view.submit, 'Submit'))
      : null;
    const close = h('button', { type: 'button', class: 'bk-button', 'data-testid': 'modal-close', onclick: () => this.handlers.close(view) },
      plainText(view.close, view.submit ? 'Cancel' : 'Close'));
    const form = h('form', { class: 'modal', novalidate: true },
      h('header', { class: 'modal-header' }, h('h2', { class: 'modal-title', id: 'modal-title' }, plainText(view.title, ''))),
      this.body,
      h('footer', { class: 'modal-footer' }, close, submit));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!submit || submit.disabled) return;
      submit.disabled = true;
      try {
        const answer = await this.handlers.submit(view, collectValues(this.body));
        if (answer?.view_errors && this.shown?.id === view.id) applyErrors(this.body, answer.view_errors);
      } finally {
        submit.disabled = false;
      }
    });
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.handlers.close(view);
    });
    clear(this.root).append(h('div', {
      class: 'modal-backdrop', 'data-testid': 'modal', 'data-view-id': view.id, 'data-callback-id': view.callback_id,
      role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'modal-title',
    }, form));
    form.querySelector('input, textarea, select')?.focus();
  }
}

// Resolves true only when the user presses the confirm button.
export function confirmDialog(root, confirm, dir) {
  return new Promise((resolve) => {
    const done = (answer) => {
      clear(root);
      resolve(answer);
    };
    const ok = h('button', { type: 'button', class: `bk-button ${confirm.style === 'danger' ? 'danger' : 'primary'}`, 'data-testid': 'confirm-ok', onclick: () => done(true) },
      plainText(confirm.confirm, 'Yes'));
    const cancel = h('button', { type: 'button', class: 'bk-button', 'data-testid': 'confirm-cancel', onclick: () => done(false) },
      plainText(confirm.deny, 'Cancel'));
    const dialog = h('div', { class: 'confirm-backdrop', 'data-testid': 'confirm-dialog', role: 'alertdialog', 'aria-modal': 'true', 'aria-labelledby': 'confirm-title' },
      h('div', { class: 'confirm' },
        h('h3', { class: 'confirm-title', id: 'confirm-title' }, plainText(confirm.title, 'Are you sure?')),
        trustedHtml('div', 'confirm-text', textObjectHtml(confirm.text, dir)),
        h('footer', { class: 'modal-footer' }, cancel, ok)));
    dialog.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') done(false);
    });
    clear(root).append(dialog);
    ok.focus();
  });
}
