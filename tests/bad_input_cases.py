"""The table of bad-input cases the tests cover, per command: ``docs/bad-input.md``.

The rows come from the ``CASES`` lists of the hardening test modules (each list drives its
module's parametrised tests) and from ``EARLIER``, the cases older tests cover, each with
the test that covers it. ``tests/test_bad_input_table.py`` checks that the document is
current and that every test named here exists. Regenerate with
``python -m tests.bad_input_cases > docs/bad-input.md``.
"""
import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Modules with a module-level CASES = [(command, description), ...] that parametrises their
# tests, or [(command, description, test name), ...] naming the test that covers each.
CASE_MODULES = [
    "tests/keyboard_lm/test_cli_hardening.py",
    "tests/keyboard_lm/test_train_validation.py",
    "tests/export/test_bundle_errors.py",
    "tests/keyboard_lm/test_adapter.py",
]

# (command, case, the test that covers it): cases covered before the hardening pass.
EARLIER = [
    ("data (any text)", "empty file", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "only blank lines", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "invalid UTF-8 (file, line, byte offset)", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "a PNG (binary: NUL byte)", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "a PNG header without NUL", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "text with a NUL byte", "tests/data_pipeline/test_corpora.py::test_bad_user_text"),
    ("data (any text)", "--replace-bad-bytes replaces bad bytes and NULs", "tests/data_pipeline/test_corpora.py::test_bad_bytes_can_be_replaced"),
    ("data (any text)", "missing path", "tests/data_pipeline/test_corpora.py::test_missing_path"),
    ("data fetch", "corrupt cached tarball: fetched again, the bad one kept aside", "tests/data_pipeline/test_corpora.py::test_corrupt_cache_is_fetched_again"),
    ("data fetch", "no npm: says which file to place where", "tests/data_pipeline/test_corpora.py::test_without_npm_the_error_says_how_to_place_the_file"),
    ("data (any corpus)", "unknown corpus name", "tests/data_pipeline/test_corpora.py::test_unknown_corpus_name"),
    ("data vocab", "invalid UTF-8: one line, nothing written", "tests/keyboard_lm/test_cli.py::test_bad_input_is_one_line_and_writes_nothing"),
    ("data vocab", "empty file: one line, nothing written", "tests/keyboard_lm/test_cli.py::test_bad_input_is_one_line_and_writes_nothing"),
    ("data stats", "missing corpus path", "tests/keyboard_lm/test_cli.py::test_missing_corpus_path"),
    ("vocabulary (load)", "vocab.txt edited by hand (sha256)", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("vocabulary (load)", "another tokenizer spec version", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("vocabulary (load)", "another format version", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("vocabulary (load)", "vocab.json not JSON", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("vocabulary (load)", "vocab.txt missing", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("vocabulary (load)", "last line without newline (rehashed)", "tests/data_pipeline/test_vocab.py::test_load_refuses_bad_vocabularies"),
    ("data vocab", "unknown vocabulary rule / cap below the specials", "tests/data_pipeline/test_vocab.py::test_bad_options"),
    ("data vocab", "train split with no tokens", "tests/data_pipeline/test_vocab.py::test_empty_train_split"),
    ("train", "stream corpus smaller than one batch", "tests/data_pipeline/test_dataset.py::test_stream_too_small_for_one_batch"),
    ("train", "unknown preset", "tests/keyboard_lm/test_training.py::test_bad_training_input"),
    ("train", "message batch larger than the corpus", "tests/keyboard_lm/test_training.py::test_bad_training_input"),
    ("train", "stream batch larger than the corpus", "tests/keyboard_lm/test_training.py::test_bad_training_input"),
    ("train", "unknown --config key", "tests/keyboard_lm/test_training.py::test_unknown_config_key"),
    ("train", "existing run without --resume: refused, run kept", "tests/keyboard_lm/test_training.py::test_existing_run_is_not_overwritten_and_vocab_must_match"),
    ("train", "killed mid-epoch: --resume continues where it stopped", "tests/keyboard_lm/test_training.py::test_killed_run_resumes_where_it_stopped"),
    ("train", "diverging loss: one line, last good model kept", "tests/keyboard_lm/test_training.py::test_divergence_stops_with_a_clear_message"),
    ("train", "killed while saving the best model: old one intact", "tests/keyboard_lm/test_training.py::test_interrupted_save_never_corrupts_the_best_model"),
    ("evaluate", "vocabulary that does not belong to the model", "tests/keyboard_lm/test_training.py::test_existing_run_is_not_overwritten_and_vocab_must_match"),
    ("evaluate", "missing run directory", "tests/keyboard_lm/test_training.py::test_evaluate_a_missing_or_corrupt_run"),
    ("export", "variables or missing weights in the converted model", "tests/export/test_export.py::test_the_checks_catch_variables_and_missing_weights"),
    ("export", "int16x8 on an LSTM / no calibration data", "tests/export/test_export.py::test_int16x8_and_empty_calibration_fail_clearly"),
    ("export", "quantization past --tolerance: refused, --force exports", "tests/export/test_export.py::test_tolerance_refuses_then_force_exports"),
    ("export", "interrupted while writing: nothing half written", "tests/export/test_export.py::test_killed_export_leaves_nothing_half_written"),
    ("export", "missing run", "tests/export/test_export.py::test_missing_run_and_unknown_mode"),
    ("export", "unknown quantization mode", "tests/export/test_export.py::test_missing_run_and_unknown_mode"),
    ("export", "run without best.keras", "tests/export/test_export.py::test_missing_run_and_unknown_mode"),
    ("evaluate / export", "truncated best.keras: one line naming it, file kept, nothing written", "tests/export/test_export.py::test_a_truncated_model_is_named_in_one_line_and_kept"),
    ("bundle (load)", "tampered model.tflite", "tests/export/test_export.py::test_tampered_bundle"),
    ("bundle (load)", "zip entry escaping the directory", "tests/export/test_export.py::test_zip_with_escaping_paths"),
    ("bundle (load)", "zip with unexpected entries (a bomb): refused, temp removed", "tests/export/test_export.py::test_zip_with_unexpected_entries_is_refused_and_cleaned_up"),
    ("simulate / type", "personal cache of another vocabulary size", "tests/keyboard_lm/test_keyboard.py::test_personal_cache_persists_and_rejects_bad_files"),
    ("simulate / type", "personal cache with an out-of-range pair", "tests/keyboard_lm/test_keyboard.py::test_personal_cache_persists_and_rejects_bad_files"),
    ("simulate / type", "cache weight or smoothing out of range", "tests/keyboard_lm/test_keyboard.py::test_personal_cache_persists_and_rejects_bad_files"),
    ("simulate / type / suggest / words", "corrupt saved user-word file: starts with none, says so once, keeps the bad file beside it", "tests/keyboard_lm/test_lexicon.py::test_user_words_persist_and_a_corrupt_file_is_kept_aside"),
    ("simulate / type / suggest / words", "a word over 64 characters, with control characters or only digits: never learned (words add refuses it)", "tests/keyboard_lm/test_lexicon.py::test_words_that_are_never_learned"),
    ("export", "--lexicon not train, none or wordfreq:LANG", "tests/export/test_bundle_errors.py::test_export_writes_a_lexicon_from_wordfreq"),
    ("simulate --presage-train", "missing / non-sqlite / too-low-order Presage database", "tests/keyboard_lm/test_presage.py::test_closed_predictor_and_bad_databases"),
    ("simulate --presage-train", "empty training text, order 0, no text2ngram", "tests/keyboard_lm/test_presage.py::test_training_errors"),
    ("personalize", "fewer than 300 words", "tests/keyboard_lm/test_personalize.py::test_bad_user_text_leaves_nothing_behind"),
    ("personalize", "too few words in the base vocabulary", "tests/keyboard_lm/test_personalize.py::test_bad_user_text_leaves_nothing_behind"),
    ("personalize", "invalid UTF-8 (file and line)", "tests/keyboard_lm/test_personalize.py::test_bad_user_text_leaves_nothing_behind"),
    ("personalize", "one single-line message", "tests/keyboard_lm/test_personalize.py::test_bad_user_text_leaves_nothing_behind"),
    ("personalize", "base whose vocabulary is not the one it trained with", "tests/keyboard_lm/test_personalize.py::test_bad_user_text_leaves_nothing_behind"),
    ("personalize", "failure mid-way: no run left, base untouched", "tests/keyboard_lm/test_personalize.py::test_a_failure_mid_way_leaves_no_run_and_the_base_untouched"),
    ("personalize", "quantization too lossy: falls back, or fails with none", "tests/keyboard_lm/test_personalize.py::test_a_bundle_that_quantizes_badly_falls_back"),
    ("personalize", "--max-forgetting not a percent in [0, 1000) or none", "tests/keyboard_lm/test_forgetting_guard.py::test_a_bad_limit_is_refused_before_any_work"),
    ("personalize --users", "one bad user: reported, others done, exit 1; resume", "tests/keyboard_lm/test_personalize.py::test_many_users_in_parallel_resume_and_survive_a_bad_user"),
    ("personalize --users --cluster", "unreachable address: one line naming it, nothing started", "tests/keyboard_lm/test_cluster.py::test_bad_cluster_input_is_one_line_and_starts_nothing"),
    ("personalize --users --cluster", "Ray not installed: one line naming the extra", "tests/keyboard_lm/test_cluster.py::test_bad_cluster_input_is_one_line_and_starts_nothing"),
    ("personalize --users --cluster", "not ray[:ADDRESS], or an address without a port", "tests/keyboard_lm/test_cluster.py::test_bad_cluster_input_is_one_line_and_starts_nothing"),
    ("personalize --users --cluster", "with --texts, or with --jobs", "tests/keyboard_lm/test_cluster.py::test_bad_cluster_input_is_one_line_and_starts_nothing"),
    ("personalize --users --cluster", "a user's folder gone when its task is submitted: reported, others done", "tests/keyboard_lm/test_cluster.py::test_a_local_ray_gives_the_reports_of_the_process_pool"),
    ("personalize --users --cluster", "a worker node killed mid-user: retried, no user lost, no half-written run", "tests/keyboard_lm/test_cluster.py::test_two_nodes_one_killed_mid_run_every_user_done_or_reported"),
]


def module_cases(path):
    """The CASES list of a test module, read without importing it (no TensorFlow here)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    namespace = {}
    for node in tree.body:  # the module-level literals CASES is built from
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:  # a dict of cases whose values are functions: its keys are the cases
                value = ({ast.literal_eval(key): None for key in node.value.keys}
                         if isinstance(node.value, ast.Dict) else None)
            for target in node.targets:
                namespace[target.id] = value
    cases = namespace.get("CASES")
    if cases is None:  # built by a comprehension: evaluate it over the module's literals
        source = next(ast.unparse(node.value) for node in tree.body if isinstance(node, ast.Assign)
                      and any(getattr(t, "id", None) == "CASES" for t in node.targets))
        scope = {"__builtins__": {}, **{k: v for k, v in namespace.items() if v is not None}}
        cases = eval(source, scope)  # noqa: S307 (our own test module's literals)
    return [(case[0], case[1], case[2] if len(case) > 2 else None) for case in cases]


def rows():
    """(command, case, test) for every case, grouped by command in a stable order."""
    table = [(command, case, test) for command, case, test in EARLIER]
    for path in CASE_MODULES:
        table += [(command, description, f"{path}::{test}" if test else path)
                  for command, description, test in module_cases(path)]
    order = {}
    for command, _, _ in table:
        order.setdefault(command, len(order))
    return sorted(table, key=lambda row: order[row[0]])


def render():
    table = rows()
    per_command = collections.Counter(command for command, _, _ in table)
    lines = ["# Bad input: the cases the tests cover", "",
             "Generated by `python -m tests.bad_input_cases` (checked current by",
             "`tests/test_bad_input_table.py`). Every case ends in one line naming the file, line or",
             "field, a non-zero exit, no traceback, and nothing lost or half written; where a command",
             "is meant to go on (a bad user in a batch, a killed run resumed) the row says so.", "",
             f"**{len(table)} cases** across {len(per_command)} commands and loaders:", "",
             "| command | cases |", "|---|---|"]
    lines += [f"| {command} | {count} |" for command, count in per_command.items()]
    lines += ["", "| command | case | test |", "|---|---|---|"]
    for command, case, test in table:
        lines.append(f"| {command} | {case.replace('|', '/')} | `{test}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
