"""`pea send` and `pea receive`: a command-line peer of the transfer protocol
(docs/transfer-protocol.md), built on aiortc. Imported only by those two
commands, so `pea serve` never needs aiortc."""
