"""Who may use opsbot and who may read what it finds.

`facts` reads who a person is and what a channel is from Slack (cached briefly); `reading` is the
reading policy and its pure `decide`; `gate` applies both to a request and audits every refusal.
The Bolt middleware that applies admission to every delivery is `bot.slack.admission` (Slack
delivery code lives in `bot.slack`, which `bot.access` does not import).
"""
