"""The model card beside a learned detector (``README.md``): what it is, what it learned from, how to rebuild it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnwise.detect.learned import LearnedDetector

# What the public sources are, where they come from and under which terms (see ../shared/data/SOURCES.md).
LICENCES: dict[str, str] = {
    "canard_dev": "CANARD dev (Elgohary et al. 2019), CC BY-SA 4.0",
    "mudoco_news": "MuDoCo-QR news (apple/ml-cread), Apple sample-code licence",
    "zh_rewrite_dev": "Chinese utterance rewriting (Su et al. 2019), first 2,000 lines; licence not stated",
    "toy_world": "turnwise's toy world (generated, Apache-2.0 like the package)",
}


def model_card(detector: LearnedDetector) -> str:
    card = detector.card
    lines = [
        "# turnwise learned context-dependence detector",
        "",
        "Logistic regression over the all-MiniLM-L6-v2 embedding (int8) of a user turn and the cue indicators of",
        "`turnwise.detect.cues` (which read the history); Platt-calibrated. Load it with",
        "`turnwise detect IN OUT --detector-model THIS_FOLDER`.",
        "",
        f"- parameters sha256: `{detector.digest}`",
        f"- embedding model: `{detector.embedding_model}`",
        f"- decision threshold: {detector.threshold}",
    ]
    if card.get("command"):
        lines.append(f"- built by: `{card['command']}`")
    for key, label in (("l2", "L2 penalty"), ("rewrites", "rewrites added as standalone turns"),
                       ("seconds to fit", "seconds to fit")):
        if key in card:
            lines.append(f"- {label}: {card[key]}")
    lines += ["", "## Training data", "", "Turns after the first; human rewrites count as standalone turns where",
              "they were added.", "", "| source | dependent | standalone | terms |", "|---|---|---|---|"]
    for name, counts in card.get("data", {}).items():
        lines.append(f"| {name} | {counts['dependent']} | {counts['standalone']} | {LICENCES.get(name, 'user data')} |")
    lines += _reliability(card.get("reliability"))
    return "\n".join(lines) + "\n"


def _reliability(table: list[dict[str, Any]] | None) -> list[str]:
    if not table:
        return []
    lines = ["", "## Calibration (out of fold, dialogues grouped)", "",
             "| predicted | turns | observed dependent |", "|---|---|---|"]
    lines += [f"| {b['low']:.1f}-{b['high']:.1f} (mean {b['mean']:.2f}) | {b['n']} | {b['observed']:.2f} |"
              for b in table if b["n"]]
    return lines
