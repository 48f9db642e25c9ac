"""Ground floor: the one rubric schema, loaders for HealthBench and RaR-Medicine, the heart rule.

Imports nothing else of edgemed except ``errors`` and ``io``.
"""

from edgemed.data.schema import RubricItem, RubricRecord, conversation_text

__all__ = ["RubricItem", "RubricRecord", "conversation_text"]
