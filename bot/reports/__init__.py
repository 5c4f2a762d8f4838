"""Files a run hands to people: the timeline picture and the evidence bundle, built from values.

Pure of the database and of Slack: `bot.runs` gathers the values, these modules turn them into
bytes (a PNG, a zip) that the CLI writes and the outbox uploads.
"""
