"""The verl internals the project relies on still hold for the installed verl; a broken one
fails loudly, naming who relies on it."""

from __future__ import annotations

import importlib

import pytest

from verl_backend import compat, patches


def test_every_coupling_holds_for_the_installed_verl():
    assert patches.installed_verl_version() == compat.WRITTEN_AGAINST
    assert compat.broken_couplings() == []


def test_a_broken_coupling_names_itself_and_its_user(monkeypatch):
    replica = importlib.import_module("verl.workers.rollout.replica")
    monkeypatch.delattr(replica.RolloutReplicaRegistry, "_registry")
    [broken] = compat.broken_couplings()
    assert "RolloutReplicaRegistry" in broken and "used by registered_replica" in broken
    assert "written against verl 0.9.1" in broken and "AttributeError" in broken


def test_a_changed_source_breaks_its_coupling(monkeypatch):
    buffer = importlib.import_module("verl.trainer.ppo.v1.replay_buffer")

    def _wait_for_next_poll(self, partition_id, last_debug_time):  # a verl that stopped sleeping
        return last_debug_time

    monkeypatch.setattr(buffer.ReplayBuffer, "_wait_for_next_poll", _wait_for_next_poll)
    [broken] = compat.broken_couplings()
    assert "poll_interval" in broken and "the check failed" in broken


def test_the_sam_trainer_runs_the_sync_code_paths():
    from sam_advantage.trainer import SamPPOTrainer

    trainer = SamPPOTrainer.__new__(SamPPOTrainer)  # no workers: only the attribute is under test
    trainer.trainer_mode = "sam"  # what verl's PPOTrainer.__init__ assigns
    assert trainer.trainer_mode == "sync"
    assert SamPPOTrainer.__mro__.index(compat.SyncCodePaths) < SamPPOTrainer.__mro__.index(
        importlib.import_module("verl.trainer.ppo.v1.trainer_sync").PPOTrainerSync)


@pytest.mark.parametrize("name", ["hf"])
def test_registered_replica_reads_the_registry_without_loading(name):
    replica = importlib.import_module("verl.workers.rollout.replica")
    import verl_backend.plugin  # noqa: F401  (registers the hf rollout)

    loader = compat.registered_replica(replica.RolloutReplicaRegistry, name)
    assert callable(loader) and compat.registered_replica(replica.RolloutReplicaRegistry, "no-such") is None


def test_estimator_inputs_reach_only_the_call_inside_provide():
    import threading

    channel = compat.EstimatorInputs()
    assert channel.current() is None
    seen_elsewhere = []
    with channel.provide({"step": 1}) as inputs:
        assert channel.current() is inputs
        worker = threading.Thread(target=lambda: seen_elsewhere.append(channel.current()))
        worker.start()
        worker.join()
    assert seen_elsewhere == [None]  # another thread sees nothing: a concurrent call cannot take them
    assert channel.current() is None


def test_a_verl_that_passes_the_batch_to_estimators_is_a_broken_coupling(monkeypatch):
    trainer = importlib.import_module("verl.trainer.ppo.ray_trainer")

    def compute_advantage(data, adv_estimator, **kw):  # a verl that calls estimators another way
        return data

    monkeypatch.setattr(trainer, "compute_advantage", compute_advantage)
    [broken] = compat.broken_couplings()
    assert "used by EstimatorInputs" in broken
