__version__ = "0.1.0"

# The entry points a user imports, loaded on first use (importing fusar_klip stays light: no torch, no GDAL):
#   from fusar_klip import synth_world, tile_scenes, annotate_corpus, TrainConfig, micro_world
# Each stage is also a module of its own: fusar_klip.geo, .synth, .facts, .hcot, .data, .model, .losses, .scio,
# .train, the evaluation (.eval_world, .eval_encoders, .eval_metrics, one .eval_* module per task family, and
# .evaluate, which runs them all and re-exports their names), .cli (and .core, the plumbing they share; .testing,
# scaffolding for tests and benchmarks).
_EXPORTS = {
    "SARInputError": "core", "read_json": "core",
    "open_sar": "geo", "tile_scenes": "geo", "read_manifest": "geo", "show_chip": "geo",
    "synth_world": "synth", "WORLDS": "synth",
    "ChipFacts": "facts",
    "annotate_corpus": "hcot", "read_corpus": "hcot", "official_corpus": "hcot", "from_official": "hcot",
    "to_official": "hcot", "HCoT": "hcot",
    "ChipCaptionDataset": "data", "pack_chips": "data", "load_tokenizer": "data",
    "KlipConfig": "model", "KlipModel": "model",
    "ScioConfig": "scio",
    "TrainConfig": "train", "plot_run": "train", "micro_world": "train",
    "load_world": "eval_world", "load_encoder": "eval_encoders",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f"fusar_klip.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fusar_klip' has no attribute {name!r}")


def __dir__(): return sorted(set(globals()) | set(_EXPORTS))
