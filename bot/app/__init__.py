"""The composition root: the one place that builds a process of the bot.

`core` builds what every process shares (database, DMA clients, flows, a worker); `slack` the
bolt app with its guards and listeners (the only place `handlers` is imported); `serve` runs
`upgradebot serve` (Slack, worker and outbox in one process) and `worker` runs `upgradebot
worker`. The CLI, the rehearsal and the test harness all build their processes here.
"""
