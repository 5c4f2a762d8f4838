"""The Slack layer: app factory, middleware, Block Kit, outbox delivery, server and start-up.

Kept import-free on purpose: `bot.messages` uses `bot.slack.posts` and `bot.slack.blocks`, which
must not pull in bolt or the handlers.
"""
