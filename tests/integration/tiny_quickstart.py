"""Overrides that shrink the quickstart recipe below its fast: block, for tests of the wiring.

SFT keeps the fast block's steps: a model that has learned less samples no right answer, best-of-N then has
no pair, and its DPO stage stops with an error, as it should.
"""

DPO = ["train_dpo_capo", "train_dpo_bestofn", "train_dpo_on_policy", "train_dpo_round_2", "train_matched_sft",
       "train_matched_sft_on_policy", "train_matched_sft_round_2", "train_more_sft", "train_online"]
TINY = ["data.train_dialogues=48", "data.prefs_dialogues=8", "data.held_out=2", "train_ask.max_steps=2",
        "simulate.limit=2", "capo.limit=2",
        "capo_on_policy.limit=2", "capo_round_2.limit=2", "bestofn.limit=4", *[f"{name}.max_steps=1" for name in DPO]]
STAGES = ["data", "tiny_model", "train_sft", "train_ask", "simulate", "detect_simulated", "detect_prefs", "capo",
          "capo_on_policy", "bestofn", "train_dpo_capo", "train_dpo_bestofn", "train_dpo_on_policy", "capo_round_2",
          "train_dpo_round_2", "train_matched_sft", "train_matched_sft_on_policy", "train_matched_sft_round_2",
          "train_more_sft", "train_online", "eval", "report"]
