"""One model interface for every role (user simulator, assistant, judge, rewriter) and its backends."""

from turnwise.models.base import ChatModel, Completion, GenerationSettings, ModelSpec, Usage, load_model

__all__ = ["ChatModel", "Completion", "GenerationSettings", "ModelSpec", "Usage", "load_model"]
