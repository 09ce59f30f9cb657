"""The forgetting guard: a personalized model whose general loss rose more than a limit is
never the shipped result.

Input: the weights the fine-tune ended with (after the final pass, if it ran), the chosen
epoch's weights before that pass, the base's weights, a function giving the general loss
of a set of weights, the base's general loss and the limit (a relative rise, 0.02 = 2%).
Output: the weights to ship and a record of what was tried and why.

The ladder, first step that is within the limit wins:
1. the fine-tuned model as it ended;
2. the chosen epoch, without the final pass (an earlier state of the same fine-tune);
3. a blend ``base + a * (chosen - base)``, with the largest ``a`` in (0, 1) found by
   bisection (``BISECTIONS`` steps) whose general loss was measured within the limit:
   the fine-tune's change, shrunk toward the base (weight-space interpolation, as in
   Wortsman et al. 2022, "Robust fine-tuning of zero-shot models");
4. the base itself (its rise is zero by definition).
Only measured weights are shipped, so the shipped general loss is within the limit by
construction, on the general text the check uses. Plain Python and numpy.
"""
import numpy as np

BISECTIONS = 5  # the blend's weight to 1/32
CHOSEN = "the chosen epoch, without the final pass"


def rise(loss, base_loss):
    return loss / base_loss - 1.0


def blend(base_weights, weights, a):
    return [b + a * (w - b) if np.issubdtype(np.asarray(w).dtype, np.floating) else w
            for b, w in zip(base_weights, weights)]


def limit_forgetting(final, chosen, base, general_loss, base_loss, limit, final_loss=None):
    """(weights to ship, record). ``final``/``chosen``/``base``: lists of arrays (``chosen`` is
    None when no final pass ran: ``final`` is then the chosen epoch); ``general_loss(weights)``
    measures; ``final_loss``: ``final``'s general loss if already measured."""
    tried = []  # every model measured: its name, general loss and rise

    def within(name, weights, loss=None):
        loss = general_loss(weights) if loss is None else loss
        tried.append({"model": name, "general_loss": loss, "rise": rise(loss, base_loss)})
        return tried[-1]["rise"] <= limit

    def shipped(weights, name, **more):
        entry = next((t for t in tried if t["model"] == name), None)
        record = {"limit": limit, "base_general_loss": base_loss, "shipped": name,
                  "shipped_rise": entry["rise"] if entry else 0.0, "backed_off": name != "fine-tuned",
                  **more, "tried": tried}
        if record["backed_off"]:
            record["why"] = (f"the fine-tuned model's general loss rose {tried[0]['rise']:.1%}, over the "
                             f"{limit:.1%} limit (--max-forgetting)")
        return weights, record

    if within("fine-tuned", final, final_loss):
        return shipped(final, "fine-tuned")
    if chosen is not None and within(CHOSEN, chosen):
        return shipped(chosen, CHOSEN)
    start = chosen if chosen is not None else final
    low, high, best = 0.0, 1.0, None
    for _ in range(BISECTIONS):
        a = (low + high) / 2
        weights = blend(base, start, a)
        if within(f"blend {a:.5g}", weights):
            low, best = a, weights
        else:
            high = a
    if best is None:
        return shipped(base, "the base", blend=0.0)
    return shipped(best, f"blend {low:.5g}", blend=low)
