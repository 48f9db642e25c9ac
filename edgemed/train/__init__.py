"""The training stage: GRPO + LoRA/QLoRA with rubric rewards (trl, peft), and the adapter merge.

Public surface: ``load_train_config`` → ``train(config) -> TrainSummary``; ``merge_adapter``.
"""

from edgemed.train.config import TrainConfig, load_train_config
from edgemed.train.merge import merge_adapter
from edgemed.train.recipe import TrainSummary, train

__all__ = ["TrainConfig", "TrainSummary", "load_train_config", "merge_adapter", "train"]
