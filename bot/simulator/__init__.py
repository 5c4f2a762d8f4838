"""The DMA simulator: a product feature (rehearsals, `upgradebot simulate`) and the tests' DMA.

Its own package beside bot/dma/ (the client and the DMA's value types): the simulator uses
bot.engine.versions, and bot.engine uses bot.dma.models, so one package would import itself
through the engine.
"""

from bot.simulator.core import IN_PROCESS_URL, DmaSimulator, serve
from bot.simulator.kinds import (
    Fault,
    FaultKind,
    RequestRecord,
    SimCluster,
    SimSupercluster,
    SimTerritory,
    SimTimings,
    fault_help,
    parse_fault,
)
from bot.simulator.transport import InProcessAdapter

__all__ = ["IN_PROCESS_URL", "DmaSimulator", "Fault", "FaultKind", "InProcessAdapter",
           "RequestRecord", "SimCluster", "SimSupercluster", "SimTerritory", "SimTimings",
           "fault_help", "parse_fault", "serve"]
