// The page: who is acting (?as=), which channel and thread are open (#channel=..&thread=..), live
// refreshes on the emulator's event stream, and every user action sent to /ui/api.

import { api, describe } from './api.js';
import { Composer } from './composer.js';
import { clear, h, trustedHtml } from './dom.js';
import { MessageList } from './messages.js';
import { ModalHost, confirmDialog } from './modal.js';
import { mrkdwnHtml } from './mrkdwn.js';

const BANNER_SECONDS = 20;
const REFRESH_DELAY_MS = 100;
const BOTTOM_SLACK_PX = 60;

const $ = (selector) => document.querySelector(selector);
const el = {
  switcher: $('[data-testid="user-switcher"]'),
  status: $('[data-testid="connection-status"]'),
  banner: $('[data-testid="error-banner"]'),
  bannerText: $('[data-testid="error-text"]'),
  bannerDismiss: $('[data-testid="error-dismiss"]'),
  teamName: $('#team-name'),
  channelList: $('#channel-list'),
  dmList: $('#dm-list'),
  channelName: $('[data-testid="channel-name"]'),
  topic: $('[data-testid="channel-topic"]'),
  pinned: $('[data-testid="pinned-count"]'),
  pinsPopover: $('[data-testid="pins-popover"]'),
  list: $('[data-testid="message-list"]'),
  intro: $('#channel-intro'),
  messages: $('#messages'),
  composer: $('[data-testid="composer"]'),
  composerBox: $('#composer-box'),
  composerHint: $('#composer-hint'),
  joinBar: $('[data-testid="join-bar"]'),
  joinText: $('#join-text'),
  joinButton: $('[data-testid="join-channel"]'),
  autocomplete: $('[data-testid="autocomplete"]'),
  threadPane: $('[data-testid="thread-pane"]'),
  threadChannel: $('#thread-channel'),
  threadBody: $('#thread-body'),
  threadParent: $('#thread-parent'),
  threadDivider: $('#thread-divider'),
  threadReplies: $('#thread-replies'),
  threadComposer: $('[data-testid="thread-composer"]'),
  threadClose: $('[data-testid="thread-close"]'),
  modalRoot: $('#modal-root'),
  confirmRoot: $('#confirm-root'),
};

const S = {
  as: new URLSearchParams(location.search).get('as') || 'alice',
  boot: null,
  dir: null,
  dirSignature: '',
  channelRef: null,
  channel: null,
  pins: [],
  messagesByTs: new Map(),
  threadTs: null,
  // After a user switch, a channel the new user is not in gives way to one they are in.
  pickMemberChannel: false,
  // Bumped on every navigation: answers to requests made before it are stale and dropped.
  epoch: 0,
  stickToBottom: false,
};

const channelList = new MessageList(el.messages);
const threadParent = new MessageList(el.threadParent);
const threadReplies = new MessageList(el.threadReplies);

// ---- errors -------------------------------------------------------------------------------------

let bannerTimer = null;

function showError(text) {
  el.bannerText.textContent = text;
  el.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(hideError, BANNER_SECONDS * 1000);
}

function hideError() {
  clearTimeout(bannerTimer);
  el.banner.hidden = true;
}

el.bannerDismiss.addEventListener('click', hideError);

async function act(path, body) {
  const answer = await api(path, body);
  if (!answer.ok) showError(describe(answer));
  scheduleRefresh();
  return answer;
}

// ---- navigation ---------------------------------------------------------------------------------

function hashState() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { channel: params.get('channel'), thread: params.get('thread') };
}

function hashFor(channel, thread) {
  const params = new URLSearchParams();
  if (channel) params.set('channel', channel);
  if (thread) params.set('thread', thread);
  return `#${params}`;
}

function navigate(channel, thread = null) {
  const target = hashFor(channel, thread);
  if (location.hash !== target) location.hash = target;
}

function fromHash() {
  const { channel, thread } = hashState();
  const changedChannel = channel !== S.channelRef;
  if (!changedChannel && thread === S.threadTs) return;
  S.channelRef = channel;
  S.threadTs = thread;
  S.epoch += 1;
  if (changedChannel) {
    S.stickToBottom = true;
    el.pinsPopover.hidden = true;
  }
  refreshNow();
}

window.addEventListener('hashchange', fromHash);

function switchUser(name) {
  if (name === S.as) return;
  S.as = name;
  history.pushState(null, '', `?as=${encodeURIComponent(name)}${location.hash}`);
  resetForUser();
}

window.addEventListener('popstate', () => {
  const name = new URLSearchParams(location.search).get('as') || 'alice';
  if (name !== S.as) {
    S.as = name;
    resetForUser();
  } else {
    fromHash();
  }
});

// Ephemeral messages, reactions marked as "mine" and modals all belong to the acting user.
function resetForUser() {
  S.epoch += 1;
  S.channel = null;
  S.pickMemberChannel = true;
  S.stickToBottom = true;
  channelList.reset();
  threadParent.reset();
  threadReplies.reset();
  modals.show(null);
  clear(el.confirmRoot);
  refreshNow();
}

el.switcher.addEventListener('change', () => switchUser(el.switcher.value));
el.threadClose.addEventListener('click', () => navigate(S.channelRef, null));

// ---- rendering ----------------------------------------------------------------------------------

function directory(boot) {
  const users = new Map(boot.users.map((u) => [u.id, u]));
  const channels = new Map(boot.all_channels.map((c) => [c.id, c]));
  const groups = new Map(boot.usergroups.map((g) => [g.id, g]));
  return {
    meId: boot.me.id,
    userName: (id) => users.get(id)?.name,
    channelName: (id) => channels.get(id)?.name,
    groupHandle: (id) => groups.get(id)?.handle,
  };
}

function humans() {
  return S.boot.users.filter((u) => !u.is_bot);
}

function renderSwitcher() {
  const options = humans().map((u) => [u.name, u.title ? `${u.real_name} — ${u.title}` : u.real_name]);
  const signature = JSON.stringify(options);
  if (el.switcher.dataset.signature !== signature) {
    clear(el.switcher).append(...options.map(([value, label]) => h('option', { value }, label)));
    el.switcher.dataset.signature = signature;
  }
  el.switcher.value = S.boot.me.name;
}

function renderSidebar() {
  const current = S.channel?.id;
  const link = (c, testid, ref, label) => h('a', {
    class: `channel-link${c.id === current ? ' active' : ''}${c.is_private && !c.is_im ? ' private' : ''}`,
    href: hashFor(ref), 'data-testid': testid, 'data-channel': ref, 'aria-current': c.id === current ? 'page' : null,
  }, label);
  const named = S.boot.channels.filter((c) => !c.is_im).sort((a, b) => a.name.localeCompare(b.name));
  clear(el.channelList).append(...named.map((c) => link(c, 'channel-link', c.name, `#${c.name}`)));
  const dms = S.boot.channels.filter((c) => c.is_im);
  clear(el.dmList).append(...dms.map((c) => link(c, 'dm-link', c.id, c.label)));
  el.teamName.textContent = S.boot.team.name;
  document.getElementById('search').placeholder = `Search ${S.boot.team.name}`;
}

function applyBoot(boot) {
  S.boot = boot;
  S.dir = directory(boot);
  S.dirSignature = JSON.stringify([boot.me.id, boot.users, boot.all_channels, boot.usergroups]);
  renderSwitcher();
  renderSidebar();
}

function messageCtx(inThread) {
  return {
    dir: S.dir,
    meId: S.boot.me.id,
    users: humans(),
    channels: S.boot.all_channels,
    inThread,
    signature: `${S.dirSignature}|${inThread}`,
    confirm: (confirm) => confirmDialog(el.confirmRoot, confirm, S.dir),
    act: (msg, element, blockId, value) => act('/ui/api/click', {
      user: S.as,
      container: msg.ephemeral
        ? { type: 'ephemeral', ephemeral_id: msg.ephemeral_id }
        : { type: 'message', channel: S.channel.id, ts: msg.ts },
      action_id: element.action_id,
      block_id: blockId,
      value: value ?? null,
    }),
    react: (msg, name, add) => act('/ui/api/reactions', { user: S.as, channel: S.channel.id, ts: msg.ts, name, add }),
    pin: (msg, add) => act('/ui/api/pins', { user: S.as, channel: S.channel.id, ts: msg.ts, add }),
    openThread: (msg) => navigate(S.channelRef, msg.is_reply && msg.thread_ts ? msg.thread_ts : msg.ts),
  };
}

function nearBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < BOTTOM_SLACK_PX;
}

function plainSnippet(msg) {
  const text = trustedHtml('div', '', mrkdwnHtml(msg.text || '', S.dir)).textContent.trim();
  return text.length > 120 ? `${text.slice(0, 117)}…` : text || '(no text)';
}

function renderPins() {
  el.pinned.textContent = `📌 ${S.pins.length}`;
  el.pinned.dataset.count = String(S.pins.length);
  clear(el.pinsPopover);
  if (!S.pins.length) {
    el.pinsPopover.append(h('div', { class: 'pins-empty' }, 'Nothing is pinned in this channel yet.'));
    return;
  }
  for (const pin of S.pins) {
    const msg = S.messagesByTs.get(pin.ts);
    const item = h('button', { type: 'button', class: 'pins-item', 'data-ts': pin.ts },
      h('b', {}, msg ? msg.author.label : 'A reply'), ' ', msg ? plainSnippet(msg) : 'in a thread');
    item.addEventListener('click', () => {
      el.pinsPopover.hidden = true;
      const node = [...el.messages.children].find((n) => n.dataset.ts === pin.ts);
      if (node) {
        node.scrollIntoView({ block: 'center' });
        node.classList.add('flash');
        setTimeout(() => node.classList.remove('flash'), 1500);
      }
    });
    el.pinsPopover.append(item);
  }
}

el.pinned.addEventListener('click', (event) => {
  event.stopPropagation();
  el.pinsPopover.hidden = !el.pinsPopover.hidden;
});

function renderChannel(answer) {
  const ch = answer.channel;
  const switched = S.channel?.id !== ch.id;
  S.channel = ch;
  S.pins = answer.pins;
  S.messagesByTs = new Map(answer.messages.filter((m) => !m.ephemeral).map((m) => [m.ts, m]));
  const title = ch.is_im ? ch.label : `#${ch.name}`;
  el.channelName.textContent = title;
  // Slack shows mentions and links in a topic resolved, e.g. "IC @alice" for "IC <@U0ALICE>".
  clear(el.topic).append(trustedHtml('span', '', mrkdwnHtml(answer.topic, S.dir)));
  el.topic.title = el.topic.textContent;
  document.title = `${title} · ${S.boot.team.name} · localslack`;
  el.composer.placeholder = ch.is_im ? `Message ${ch.label}` : `Message #${ch.name}`;
  // Like Slack: a public channel you are not in can be read, and joined to write in it.
  const outside = !ch.is_member && !ch.is_im;
  el.joinBar.hidden = !outside;
  el.composerBox.hidden = outside;
  el.composerHint.hidden = outside;
  el.joinText.textContent = `You are viewing #${ch.name}.`;
  clear(el.intro).append(
    h('h2', {}, title),
    h('p', {}, ch.is_im ? `This is the very beginning of your direct message history with ${ch.label}.` : `This is the very beginning of the ${title} channel.`),
  );
  renderPins();
  const stick = switched || S.stickToBottom || nearBottom(el.list);
  const scrollTop = el.list.scrollTop;
  if (switched) channelList.reset();
  channelList.update(answer.messages, messageCtx(false));
  el.list.scrollTop = stick ? el.list.scrollHeight : scrollTop;
  S.stickToBottom = false;
  renderSidebar();
}

function renderThread(answer) {
  const n = answer.replies.length;
  el.threadPane.hidden = false;
  el.threadChannel.textContent = answer.channel.is_im ? answer.channel.label : `#${answer.channel.name}`;
  const stick = el.threadPane.dataset.ts !== answer.parent.ts || nearBottom(el.threadBody);
  el.threadPane.dataset.ts = answer.parent.ts;
  const ctx = messageCtx(true);
  threadParent.update([answer.parent], ctx);
  el.threadDivider.textContent = n ? `${n} ${n === 1 ? 'reply' : 'replies'}` : 'No replies yet';
  threadReplies.update(answer.replies, ctx);
  if (stick) el.threadBody.scrollTop = el.threadBody.scrollHeight;
}

function closeThreadPane() {
  el.threadPane.hidden = true;
  delete el.threadPane.dataset.ts;
  threadParent.reset();
  threadReplies.reset();
}

// ---- loading ------------------------------------------------------------------------------------

const user = () => encodeURIComponent(S.as);

function defaultChannel() {
  return S.boot.channels.find((c) => !c.is_im)?.name ?? S.boot.channels[0]?.id ?? null;
}

async function loadChannel(epoch) {
  const ref = S.channelRef;
  const answer = await api(`/ui/api/channels/${encodeURIComponent(ref)}/messages?user=${user()}`);
  if (epoch !== S.epoch) return;
  if (!answer.ok) {
    showError(answer.error === 'channel_not_found' ? `There is no channel “${ref}” that ${S.as} can see.` : describe(answer));
    const fallback = defaultChannel();
    if (fallback && fallback !== ref) navigate(fallback);
    return;
  }
  renderChannel(answer);
}

async function loadThread(epoch) {
  if (!S.threadTs) {
    closeThreadPane();
    return;
  }
  const answer = await api(`/ui/api/channels/${encodeURIComponent(S.channelRef)}/thread/${encodeURIComponent(S.threadTs)}?user=${user()}`);
  if (epoch !== S.epoch) return;
  if (!answer.ok) {
    showError(`That thread is gone (${describe(answer)}).`);
    navigate(S.channelRef, null);
    return;
  }
  renderThread(answer);
}

async function loadViews(epoch) {
  const answer = await api(`/ui/api/views?user=${user()}`);
  if (epoch !== S.epoch || !answer.ok) return;
  modals.show(answer.views.at(-1) ?? null, {
    dir: S.dir, meId: S.boot.me.id, users: humans(), channels: S.boot.all_channels,
    confirm: (confirm) => confirmDialog(el.confirmRoot, confirm, S.dir),
  });
}

async function refreshAll() {
  const epoch = S.epoch;
  const boot = await api(`/ui/api/bootstrap?user=${user()}`);
  if (epoch !== S.epoch) return;
  if (!boot.ok) {
    showError(boot.error === 'user_not_found' ? `There is no user “${S.as}” in this workspace; showing alice.` : describe(boot));
    if (boot.error === 'user_not_found' && S.as !== 'alice') switchUser('alice');
    return;
  }
  applyBoot(boot);
  const member = (ref) => boot.channels.some((c) => c.name === ref || c.id === ref);
  if (!S.channelRef || (S.pickMemberChannel && !member(S.channelRef))) {
    const fallback = defaultChannel();
    if (!fallback) return;
    history.replaceState(null, '', `${location.search}${hashFor(fallback, null)}`);
    S.channelRef = fallback;
    S.threadTs = null;
  }
  S.pickMemberChannel = false;
  await Promise.all([loadChannel(epoch), loadThread(epoch), loadViews(epoch)]);
}

let refreshTimer = null;
let refreshing = false;
let refreshAgain = false;

async function refreshNow() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    await refreshAll();
  } finally {
    refreshing = false;
    if (refreshAgain) {
      refreshAgain = false;
      scheduleRefresh();
    }
  }
}

// Changes come in bursts (a command, the app's posts, its views.open): one re-read per burst.
function scheduleRefresh() {
  if (refreshTimer === null) refreshTimer = setTimeout(refreshNow, REFRESH_DELAY_MS);
}

// ---- actions ------------------------------------------------------------------------------------

const modals = new ModalHost(el.modalRoot, {
  submit: async (view, values) => {
    const answer = await act(`/ui/api/views/${encodeURIComponent(view.id)}/submit`, { user: S.as, values });
    return answer.ok ? answer : null;
  },
  close: (view) => act(`/ui/api/views/${encodeURIComponent(view.id)}/close`, { user: S.as }),
  act: (view, element, blockId, value) => act('/ui/api/click', {
    user: S.as,
    container: { type: 'view', view_id: view.id },
    action_id: element.action_id,
    block_id: blockId,
    value: value ?? null,
  }),
});

async function send(text, threadTs) {
  if (!S.channel) return false;
  let answer;
  if (text.startsWith('/')) {
    answer = await act('/ui/api/command', { user: S.as, channel: S.channel.id, text });
  } else {
    S.stickToBottom = !threadTs;
    answer = await act('/ui/api/message', { user: S.as, channel: S.channel.id, text, thread_ts: threadTs });
  }
  return answer.ok;
}

new Composer(el.composer, {
  send: (text) => send(text, null),
  commands: () => S.boot?.commands ?? [],
  list: el.autocomplete,
});
new Composer(el.threadComposer, { send: (text) => send(text, S.threadTs) });

document.addEventListener('click', (event) => {
  for (const menu of document.querySelectorAll('.overflow-menu:not([hidden])')) {
    if (!menu.parentElement.contains(event.target)) menu.hidden = true;
  }
  if (!el.pinsPopover.hidden && !el.pinsPopover.contains(event.target)) el.pinsPopover.hidden = true;
});

// ---- live updates -------------------------------------------------------------------------------

function setStatus(state, title) {
  el.status.dataset.state = state;
  el.status.title = title;
}

function connect() {
  const events = new EventSource('/ui/events');
  events.addEventListener('open', () => setStatus('live', 'Live updates: connected'));
  events.addEventListener('error', () => setStatus('offline', 'Live updates: reconnecting…'));
  events.addEventListener('change', scheduleRefresh);
  events.addEventListener('api_error', (event) => {
    const rejected = JSON.parse(event.data);
    const app = S.boot?.bot_name ?? 'The app';
    showError(`Slack rejected ${app}'s ${rejected.method}: ${rejected.error}${rejected.detail ? ` — ${rejected.detail}` : ''}`);
  });
}

S.channelRef = hashState().channel;
S.threadTs = hashState().thread;
S.stickToBottom = true;
connect();
refreshNow();

el.joinButton.addEventListener('click', async () => {
  if (!S.channel) return;
  await act('/ui/api/join', { user: S.as, channel: S.channel.id });
});
