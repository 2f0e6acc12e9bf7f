"""The cost rules: one function per physical operation (:mod:`emulator.cost.physical`),
composed into the operations of both dataflows by :class:`emulator.cost.schedule.CostModel`."""
