"""pytasks: a to-do list tenant written in Python with smcp-box's tenant SDK.

Shows each kind of MCP feature a component tenant can offer: tools (one reports progress), a
resource, a prompt, and kv persistence (tasks survive instance recycling and box restarts).
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from smcp_box_sdk import App, Context, ToolError, config, kv, now_ms

app = App(
    "pytasks",
    version="1.0.0",
    instructions="A to-do list. Add tasks, list them, mark them done.",
)


class Task(TypedDict):
    id: int
    title: str
    done: bool
    created_ms: int


def _load(task_id: int) -> Task:
    task = kv.get_json(f"task:{task_id}")
    if task is None:
        raise ToolError(f"no task {task_id}")
    return Task(**task)


@app.tool()
def add_task(title: Annotated[str, "What needs doing"]) -> Task:
    """Add a task to the list and return it."""
    if not title.strip():
        raise ToolError("the title is empty")
    task_id = kv.incr("last_id")  # atomic: parallel calls never get the same id
    task = Task(id=task_id, title=title.strip(), done=False, created_ms=now_ms())
    kv.set_json(f"task:{task_id}", task)
    return task


@app.tool()
def list_tasks(include_done: bool = True) -> dict[str, list[Task]]:
    """List the tasks, oldest first."""
    ids = sorted(int(key.split(":", 1)[1]) for key in kv.keys("task:"))
    tasks = [_load(task_id) for task_id in ids]
    return {"tasks": [t for t in tasks if include_done or not t["done"]]}


@app.tool()
def complete_task(id: int) -> Task:
    """Mark a task done."""
    task = _load(id)
    task["done"] = True
    kv.set_json(f"task:{id}", task)
    return task


@app.tool(title="Review the list")
def review(ctx: Context, steps: Annotated[int, "How many passes to make"] = 3) -> str:
    """Go through the list in a few passes, reporting progress after each."""
    if not 1 <= steps <= 20:
        raise ToolError("steps must be between 1 and 20")
    for step in range(1, steps + 1):
        ctx.progress(step, steps, f"pass {step} of {steps}")
    count = len(kv.keys("task:"))
    return f"reviewed {count} task(s) in {steps} passes"


@app.resource("tasks://summary", name="summary", mime_type="text/markdown")
def summary() -> str:
    """The list as Markdown."""
    lines = [f"# {config('title', 'Tasks')}", ""]
    for task in list_tasks()["tasks"]:
        lines.append(f"- [{'x' if task['done'] else ' '}] {task['title']} (#{task['id']})")
    return "\n".join(lines) + "\n"


@app.prompt()
def plan_day(focus: str, mood: str = "steady") -> str:
    """Plan the day around the open tasks."""
    open_tasks = [t["title"] for t in list_tasks(include_done=False)["tasks"]]
    listed = "; ".join(open_tasks) or "nothing yet"
    return f"Plan my day with a focus on {focus} (mood: {mood}). Open tasks: {listed}."


WitWorld = app.world()
