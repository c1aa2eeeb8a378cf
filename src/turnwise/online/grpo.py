"""Online multi-turn training: TRL's GRPOTrainer, its rollouts played out with a user simulator.

    turnwise train online --data dialogues.jsonl --model runs/sft --output runs/online \\
        --scorer turnwise.quickstart.world:check_answer --turns 3
    python -m turnwise.online.grpo --config online.yaml          # the entry `accelerate launch -m` runs

Every user turn of every training dialogue (with the turns before it) is a prompt. For a batch of prompts,
TRL's GRPOTrainer asks turnwise's rollout function (its ``rollout_func`` hook) for ``num_generations``
candidate answers per prompt: the policy samples them, and each is played out for ``turns`` assistant turns
(:func:`turnwise.online.rollout.continue_dialogue`): the user simulator writes the next user turn, the policy
(the model being trained, greedy, no gradient) answers, and the scorer rewards every assistant turn. The
candidate's reward is the discounted mean over its rollout; GRPO turns the group's rewards into advantages
and updates the policy on the candidate's tokens only. Nothing of the optimisation is turnwise's: the loss,
the KL term (``beta``), clipping and the group normalisation are TRL's.

The user simulator: ``user_mode: replay`` (the record's own later user turns, whose references the world
knows: ``meta.references`` per assistant turn, as the quickstart's toy world writes them), ``ask`` (a trained
ask model, ``user_model``) or ``prompted`` (an instruction model playing the user). A simulated turn passes
``turnwise simulate``'s filters (and ``user_check``) or is drawn again; ``user_reference`` gives it a reference
when a world can tell what a right answer states. The scorer is any
``--scorer`` spec (:mod:`turnwise.score.mix`): a checker (``module:function`` or ``exact``...), a reward model
(``rm:DIR``); a turn without a reference or score does not count.

Every rollout is a record in ``OUTPUT/rollouts.jsonl``: the messages, who wrote each, each turn's reward and
reference, the candidate's reward, the step. A resumed run (from the last checkpoint, like every trainer)
keeps the rollouts of the interrupted one and suffixes the ids of the steps it plays again (``-r1``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.data.schema import Message
from turnwise.errors import ConfigError, require
from turnwise.models.base import Completion, GenerationSettings, Usage
from turnwise.train.configs import TrainConfig

log = logging.getLogger(__name__)
ROLLOUTS = "rollouts.jsonl"


@dataclass
class OnlineTrainConfig(TrainConfig):
    """``turnwise train online``: GRPO with multi-turn rollouts against a user simulator.

    Attributes:
        num_generations: candidate answers per prompt (GRPO's group); the batch holds
            ``per_device_train_batch_size`` candidates, so a multiple of it.
        max_completion_length: most tokens of a candidate answer (and of the policy's later answers).
        temperature: sampling temperature of the candidates.
        turns: assistant turns per rollout, the candidate's included (1 = the candidate alone).
        discount: the discount γ: turn k of a rollout weighs γ^(k−1) in the candidate's reward.
        scorer: scorer specs for every assistant turn (``module:function``, ``exact``, ``numeric``, ``rm:DIR``...).
        user_mode: ``replay`` (the record's later user turns), ``ask`` (an ask model) or ``prompted``.
        user_model: the simulator's model (a folder or hub id) for ``ask`` and ``prompted``.
        user_temperature: the simulator's sampling temperature.
        user_max_tokens: most tokens of a simulated user turn.
        user_regenerations: drafts drawn again when one fails ``turnwise simulate``'s user-turn filters (too
            short, a role label, an answer, repeated, near-duplicate, off-language) or ``user_check``; then the
            rollout ends there (``ended_by: filter``).
        user_check: a filter of your own, ``module:function``, ``function(text, messages)`` → a reason to reject
            the draft, or None (``turnwise.quickstart.world:off_world``: questions the toy world does not ask).
        user_reference: ``module:function``, ``function(messages)`` → the reference of a simulated user turn (the
            dialogue ends on it), or None; a checker scores the turns that have one
            (``turnwise.quickstart.world:oracle_reference``); without it, simulated turns have no reference.
        beta: GRPO's KL coefficient against the starting model (0 = no reference model, TRL's default).
    """

    learning_rate: float = 1e-6
    per_device_train_batch_size: int = 8
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    turns: int = 3
    discount: float = 1.0
    scorer: list[str] = field(default_factory=lambda: ["exact"])
    user_mode: str = "replay"
    user_model: str | None = None
    user_temperature: float = 0.7
    user_max_tokens: int = 64
    user_regenerations: int = 2
    user_check: str | None = None
    user_reference: str | None = None
    beta: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.user_mode not in ("replay", "ask", "prompted"):
            raise ValueError(f"user_mode must be replay, ask or prompted, got {self.user_mode!r}")
        if self.user_mode != "replay" and not self.user_model:
            raise ValueError(f"user_mode {self.user_mode} needs user_model (in a recipe: models: {{user: ...}})")
        if self.user_regenerations < 0:
            raise ValueError(f"user_regenerations must be at least 0, got {self.user_regenerations}")
        if self.num_generations < 2:
            raise ValueError(f"num_generations must be at least 2 (GRPO compares a group), got {self.num_generations}")
        if self.per_device_train_batch_size % self.num_generations:
            raise ValueError(f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple of "
                             f"num_generations ({self.num_generations})")


def prompt_rows(conversations: list[Any]) -> list[dict[str, Any]]:
    """One prompt per user turn: the messages up to it, its reference and the later user turns (with theirs).

    ``meta["references"]`` (one per assistant turn) gives the references; without it they are None.
    """
    rows = []
    for conv in conversations:
        messages = list(conv.messages)
        references = list(conv.meta.get("references") or [])
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        for k, index in enumerate(users):
            later = [{"content": messages[j]["content"], "reference": _at(references, k + 1 + n)}
                     for n, j in enumerate(users[k + 1:])]
            rows.append({"prompt": messages[:index + 1],
                         "meta": json.dumps({"id": f"{conv.id}:{k}", "reference": _at(references, k),
                                             "future": later})})
    return rows


def _at(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


class LiveChatModel:
    """The model being trained, as a :class:`~turnwise.models.base.ChatModel` for the rollouts' later turns:
    greedy (or sampled) ``generate`` without gradients, one conversation at a time."""

    backend = "live"

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int):
        self.network, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.model = "policy"  # the ChatModel's name: the model being trained, as it is now

    async def chat(self, conversations: list[list[Message]], settings: GenerationSettings) -> list[Completion]:
        return [self._one(conversation, settings) for conversation in conversations]

    def _one(self, conversation: list[Message], settings: GenerationSettings) -> Completion:
        torch = require("torch", "train")
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                                 return_dict=True)["input_ids"]
        device = next(self.network.parameters()).device
        sample = bool(settings.temperature)
        with torch.no_grad():
            out = self.network.generate(torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids),
                                      dtype=torch.long, device=device),
                                      max_new_tokens=min(settings.max_tokens or self.max_new_tokens,
                                                         self.max_new_tokens),
                                      do_sample=sample, temperature=settings.temperature if sample else None,
                                      top_p=None, top_k=None, use_cache=True,
                                      pad_token_id=self.tokenizer.pad_token_id)
        text = self.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
        return Completion(texts=[text], finish_reasons=["stop"], usage=Usage(len(ids), int(out.shape[1] - len(ids))))

    async def aclose(self) -> None:
        return None


def _user_simulator(cfg: OnlineTrainConfig) -> Any:
    from turnwise.online.rollout import ModelUser, ReplayUser

    if cfg.user_mode == "replay":
        return ReplayUser()
    from turnwise.models.base import ModelSpec, load_model
    from turnwise.score.verifiable import load_callable
    from turnwise.simulate.filters import FilterConfig

    reference = load_callable(cfg.user_reference, "user-turn reference") if cfg.user_reference else None
    settings = GenerationSettings(temperature=cfg.user_temperature, max_tokens=cfg.user_max_tokens)
    return ModelUser(load_model(ModelSpec(model=str(cfg.user_model), backend="auto")), mode=cfg.user_mode,
                     settings=settings, filters=FilterConfig(check=cfg.user_check),
                     regenerations=cfg.user_regenerations, reference=reference, name=str(cfg.user_model))


class OnlineRollouts:
    """TRL's ``rollout_func``: sample the candidates, play each out, write the records, return TRL's fields."""

    def __init__(self, cfg: OnlineTrainConfig, rows: list[dict[str, Any]], store: Any, scorer: Any, user: Any):
        from turnwise.online.rollout import RolloutConfig

        self.cfg, self.store, self.scorer, self.user = cfg, store, scorer, user
        self.meta = {_key(row["prompt"]): json.loads(row["meta"]) for row in rows}
        policy = GenerationSettings(temperature=0.0, max_tokens=cfg.max_completion_length)
        self.rollout_cfg = RolloutConfig(turns=cfg.turns, discount=cfg.discount, policy=policy)

    def __call__(self, prompts: list[list[Message]], trainer: Any) -> dict[str, Any]:
        torch = require("torch", "train")
        model = trainer.accelerator.unwrap_model(trainer.model)
        tokenizer = trainer.processing_class
        training = model.training
        model.eval()
        try:
            prompt_ids, completion_ids = self._sample(model, tokenizer, prompts, torch)
            answers = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
            live = LiveChatModel(model, tokenizer, self.cfg.max_completion_length)
            rollouts = asyncio.run(self._play(prompts, answers, live))
        finally:
            model.train(training)
        step = trainer.state.global_step
        if trainer.accelerator.is_main_process:
            for i, (prompt, rollout) in enumerate(zip(prompts, rollouts, strict=True)):
                self._write(step, i, prompt, rollout)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None,
                "rollout_reward": [r.reward for r in rollouts]}

    def _sample(self, model: Any, tokenizer: Any, prompts: list, torch: Any) -> tuple[list, list]:
        prompt_ids = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True,
                                                    return_dict=True)["input_ids"] for p in prompts]
        width = max(map(len, prompt_ids))
        pad = tokenizer.pad_token_id
        device = next(model.parameters()).device
        batch = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids], device=device)  # left padding
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids], device=device)
        with torch.no_grad():
            out = model.generate(batch, attention_mask=mask, max_new_tokens=self.cfg.max_completion_length,
                                 do_sample=True, temperature=self.cfg.temperature, top_p=None, top_k=None,
                                 use_cache=True, pad_token_id=pad)
        completions = []
        eos = {tokenizer.eos_token_id, pad}
        for row in out[:, width:].tolist():
            ids = []
            for token in row:
                ids.append(token)
                if token in eos:
                    break
            completions.append(ids)
        return prompt_ids, completions

    async def _play(self, prompts: list, answers: list[str], live: LiveChatModel) -> list[Any]:
        from turnwise.online.rollout import continue_dialogue

        return [await continue_dialogue(prompt, answer, policy=live, user=self.user, scorer=self.scorer,
                                        cfg=self.rollout_cfg, meta=self.meta.get(_key(prompt), {}),
                                        item_id=self.meta.get(_key(prompt), {}).get("id", "prompt"))
                for prompt, answer in zip(prompts, answers, strict=True)]

    def _write(self, step: int, index: int, prompt: list[Message], rollout: Any) -> None:
        from turnwise.records import make_record

        rid, again = f"step-{step:06d}-{index:03d}", 0
        while (rid if not again else f"{rid}-r{again}") in self.store.done:
            again += 1
        meta = self.meta.get(_key(prompt), {})
        record = make_record(rid if not again else f"{rid}-r{again}", "ok", rollout.to_record(),
                             meta={"step": step, "prompt": meta.get("id")})
        self.store.append(record)


def _key(prompt: list[Message]) -> str:
    return json.dumps([[m["role"], m["content"]] for m in prompt], ensure_ascii=False)


def rollout_reward(prompts: list, completions: list, rollout_reward: list[float], **kwargs: Any) -> list[float]:
    """The reward function GRPO calls: the multi-turn reward the rollout function computed per candidate."""
    return list(rollout_reward)


def build_online_trainer(cfg: OnlineTrainConfig, *, callbacks: list[Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """Read the dialogues, make the prompts, build TRL's GRPOTrainer with the rollout function.

    Returns:
        The trainer, the data report, the placement and the rollout store (to close after training).
    """
    trl, datasets = require("trl", "train"), require("datasets", "train")
    from turnwise.data.render import load_tokenizer
    from turnwise.data.schema import Conversation
    from turnwise.models.embedded import resolve
    from turnwise.records import RecordStore
    from turnwise.score.mix import build_scorer
    from turnwise.train.common import peft_config, resolve_placement, trl_args
    from turnwise.train.data import read_items

    placement = resolve_placement(cfg)
    tokenizer = load_tokenizer(cfg.model, chat_template=cfg.chat_template, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    items, report = read_items(cfg.data, cfg.data_format, skip_invalid=cfg.skip_invalid, max_rows=cfg.max_rows)
    conversations = [item for item in items if isinstance(item, Conversation)]
    rows = prompt_rows(conversations)
    if not rows:
        raise ConfigError(f"{cfg.data}: no conversation with a user turn to train on ({report.summary()})")
    report.rows = len(rows)  # a row here is a prompt: one per user turn
    args = {k: v for k, v in trl_args(cfg, placement).items() if k != "max_length"}
    config = trl.GRPOConfig(**args, num_generations=cfg.num_generations,
                            max_completion_length=cfg.max_completion_length, temperature=cfg.temperature,
                            beta=cfg.beta, remove_unused_columns=False)
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    store = RecordStore(Path(cfg.output) / ROLLOUTS)
    rollouts = OnlineRollouts(cfg, rows, store, build_scorer(list(cfg.scorer)), _user_simulator(cfg))
    import inspect

    if "rollout_func" not in inspect.signature(trl.GRPOTrainer.__init__).parameters:
        raise ConfigError(f"turnwise train online needs TRL's GRPOTrainer(rollout_func=...) (tested with TRL 1.16); "
                          f"this TRL is {trl.__version__}: pip install -U trl")
    with warnings.catch_warnings():  # TRL marks rollout_func experimental; tests/integration/test_train_online.py
        # checks what turnwise relies on (the prompts it gets, the fields it returns, the rewards TRL logs)
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
        trainer = trl.GRPOTrainer(model=resolve(cfg.model), reward_funcs=[rollout_reward], args=config,
                                  train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
                                  peft_config=peft_config(cfg), callbacks=callbacks, rollout_func=rollouts)
    return trainer, report, placement, store


def train_online(cfg: OnlineTrainConfig, *, callbacks: list[Any] | None = None) -> Any:
    """Train; see the module docstring. Resumes from the last checkpoint in ``output``."""
    from turnwise.train.common import run_trainer

    trainer, report, placement, store = build_online_trainer(cfg, callbacks=callbacks)
    try:
        return run_trainer(trainer, cfg, "online", report, placement)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    from turnwise.train.entry import module_main

    module_main(argv, "online", OnlineTrainConfig, train_online)


if __name__ == "__main__":
    main()
