"""Configuration texts and helpers shared by the configuration tests."""

from __future__ import annotations

import textwrap

import pytest

from bot.config import ConfigError, Problem, load_settings_text

INVENTORY = """
superclusters:
  - name: global
    clusters:
      - {name: dallas, api_url: "https://dma-dallas.example.com:8443/api/rest"}
      - {name: denver, api_url: "https://dma-denver.example.com:8443/api/rest"}
clusters:
  - {name: lab, api_url: "https://dma-lab.example.com/api/rest", servers: 1}
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_settings_text(textwrap.dedent(text), "upgradebot.yml")
    return list(caught.value.problems)


def keys_of(text: str) -> list[str]:
    return [p.key for p in problems_of(text)]


CLUSTER = '{name: %s, api_url: "https://dma-%s.example.com/api/rest"}'
SC = "superclusters:\n  - name: global\n    clusters:\n"


def sc_with(*lines: str) -> str:
    return SC + "".join(f"      - {line}\n" for line in lines)
