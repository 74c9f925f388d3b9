"""Workflow runs and their steps."""

from __future__ import annotations

import factory

from core.models import WorkflowExecution, WorkflowExecutionStatus, WorkflowStepExecution
from tests.factories.base import BaseFactory, parent


class WorkflowExecutionFactory(BaseFactory[WorkflowExecution]):
    class Meta:
        model = WorkflowExecution

    workflow_id = factory.Sequence(lambda n: f"workflow-{n}")
    input_data = factory.LazyFunction(dict)

    class Params:
        completed = factory.Trait(status=WorkflowExecutionStatus.COMPLETED, outputs={"ok": True})
        failed = factory.Trait(status=WorkflowExecutionStatus.FAILED, error="step failed")


class WorkflowStepExecutionFactory(BaseFactory[WorkflowStepExecution]):
    """A step; `workflow_id` is copied from the run by the model at flush."""

    class Meta:
        model = WorkflowStepExecution

    execution = parent("execution_id", WorkflowExecutionFactory)
    step_id = factory.Sequence(lambda n: f"step-{n}")
    step_name = factory.Sequence(lambda n: f"Step {n}")
    step_type = "action"
    # Increasing across calls, hence increasing within each run.
    sequence_order = factory.Sequence(lambda n: n)
