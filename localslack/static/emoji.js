// Slack emoji short names the bot and people use most, as Unicode. Unknown names stay as `:name:`.

export const EMOJI = {
  '+1': '👍', '-1': '👎', '100': '💯',
  alarm_clock: '⏰', ambulance: '🚑', arrow_backward: '◀️', arrow_down: '⬇️', arrow_forward: '▶️',
  arrow_left: '⬅️', arrow_lower_right: '↘️', arrow_right: '➡️', arrow_right_hook: '↪️', arrow_up: '⬆️',
  arrow_upper_right: '↗️', arrows_counterclockwise: '🔄', ballot_box_with_check: '☑️', balloon: '🎈',
  bangbang: '‼️', bar_chart: '📊', battery: '🔋', beer: '🍺', bell: '🔔', black_circle: '⚫',
  black_large_square: '⬛', blue_circle: '🔵', bomb: '💣', book: '📖', bookmark: '🔖', books: '📚',
  boom: '💥', brown_circle: '🟤', bug: '🐛', bulb: '💡', bust_in_silhouette: '👤',
  busts_in_silhouette: '👥', calendar: '📆', card_index_dividers: '🗂️', chart: '💹',
  chart_with_downwards_trend: '📉', chart_with_upwards_trend: '📈', checkered_flag: '🏁', clap: '👏',
  clipboard: '📋', clock3: '🕒', closed_lock_with_key: '🔐', cloud: '☁️', coffee: '☕', collision: '💥',
  computer: '💻', construction: '🚧', cool: '🆒', crown: '👑', dart: '🎯', date: '📅', desktop_computer: '🖥️',
  dizzy: '💫', droplet: '💧', e_mail: '📧', electric_plug: '🔌', email: '✉️', envelope: '✉️',
  exclamation: '❗', eyes: '👀', face_with_monocle: '🧐', fast_forward: '⏩', file_folder: '📁',
  fire: '🔥', fire_engine: '🚒', firecracker: '🧨', flashlight: '🔦', floppy_disk: '💾', gear: '⚙️',
  gem: '💎', ghost: '👻', gift: '🎁', globe_with_meridians: '🌐', green_circle: '🟢',
  green_heart: '💚', grey_exclamation: '❕', grey_question: '❔', hammer: '🔨',
  hammer_and_wrench: '🛠️', heart: '❤️', heavy_check_mark: '✔️', heavy_exclamation_mark: '❗',
  heavy_minus_sign: '➖', heavy_multiplication_x: '✖️', heavy_plus_sign: '➕', hourglass: '⌛',
  hourglass_flowing_sand: '⏳', inbox_tray: '📥', information_source: 'ℹ️', interrobang: '⁉️',
  joy: '😂', key: '🔑', label: '🏷️', large_blue_circle: '🔵', large_blue_diamond: '🔷',
  large_green_circle: '🟢', large_orange_circle: '🟠', large_orange_diamond: '🔶',
  large_purple_circle: '🟣', large_red_circle: '🔴', large_yellow_circle: '🟡', ledger: '📒',
  leftwards_arrow_with_hook: '↩️', link: '🔗', lock: '🔒', loudspeaker: '📢', mag: '🔍',
  mag_right: '🔎', mega: '📣', memo: '📝', microscope: '🔬', moneybag: '💰', muscle: '💪', new: '🆕',
  no_entry: '⛔', no_entry_sign: '🚫', notebook: '📓', nut_and_bolt: '🔩', ocean: '🌊', ok: '🆗',
  ok_hand: '👌', open_file_folder: '📂', orange_circle: '🟠', outbox_tray: '📤', package: '📦',
  page_facing_up: '📄', page_with_curl: '📃', pager: '📟', paperclip: '📎', pause_button: '⏸️',
  pencil: '📝', pencil2: '✏️', phone: '☎️', point_right: '👉', point_up: '☝️', police_car: '🚓',
  pray: '🙏', purple_circle: '🟣', pushpin: '📌', question: '❓', raised_hands: '🙌', receipt: '🧾',
  recycle: '♻️', red_circle: '🔴', red_square: '🟥', repeat: '🔁', rewind: '⏪', robot_face: '🤖',
  rocket: '🚀', rotating_light: '🚨', round_pushpin: '📍', satellite: '📡', scissors: '✂️',
  scream: '😱', scroll: '📜', shield: '🛡️', signal_strength: '📶', siren: '🚨', skull: '💀',
  slightly_smiling_face: '🙂', smile: '😄', snail: '🐌', snowflake: '❄️', sos: '🆘', sparkles: '✨',
  speech_balloon: '💬', spiral_calendar_pad: '🗓️', spiral_note_pad: '🗒️', star: '⭐', star2: '🌟',
  stop_button: '⏹️', stopwatch: '⏱️', sunny: '☀️', sweat_smile: '😅', tada: '🎉',
  telephone_receiver: '📞', test_tube: '🧪', thinking_face: '🤔', thumbsdown: '👎', thumbsup: '👍',
  timer_clock: '⏲️', toolbox: '🧰', traffic_light: '🚥', triangular_flag_on_post: '🚩', trophy: '🏆',
  turtle: '🐢', twisted_rightwards_arrows: '🔀', unlock: '🔓', up: '🆙', vertical_traffic_light: '🚦',
  warning: '⚠️', wastebasket: '🗑️', wave: '👋', white_check_mark: '✅', white_circle: '⚪',
  white_large_square: '⬜', wrench: '🔧', x: '❌', yellow_circle: '🟡', zap: '⚡',
  'skin-tone-2': '', 'skin-tone-3': '', 'skin-tone-4': '', 'skin-tone-5': '', 'skin-tone-6': '',
};

export function emojiChar(name) {
  return Object.prototype.hasOwnProperty.call(EMOJI, name) ? EMOJI[name] : null;
}

// `text` is already HTML-escaped; emoji characters need no escaping.
export function replaceEmoji(text) {
  return text.replace(/:([a-z0-9_+'-]+):/g, (whole, name) => emojiChar(name) ?? whole);
}
