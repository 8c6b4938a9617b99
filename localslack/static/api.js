// Calls to the emulator's /ui/api: every answer is Slack-style {ok, error?, ...}, even a failed fetch.

export async function api(path, body) {
  const init = body === undefined
    ? { headers: { Accept: 'application/json' } }
    : { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, error: 'emulator_unreachable', detail: 'localslack is not answering; is it still running?' };
  }
  try {
    return await response.json();
  } catch {
    return { ok: false, error: `http_${response.status}` };
  }
}

export function describe(answer) {
  return answer.detail ? `${answer.error}: ${answer.detail}` : String(answer.error ?? 'unknown_error');
}
