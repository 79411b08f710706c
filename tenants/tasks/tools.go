package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

type task struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

var tools = []map[string]any{
	{
		"name":        "task_add",
		"description": "Add a task to the list and return it with its id.",
		"inputSchema": map[string]any{
			"type":       "object",
			"properties": map[string]any{"title": map[string]any{"type": "string", "minLength": 1}},
			"required":   []string{"title"},
		},
	},
	{
		"name":        "task_list",
		"description": "List the tasks, open ones first.",
		"inputSchema": map[string]any{"type": "object", "properties": map[string]any{}},
	},
	{
		"name":        "task_done",
		"description": "Mark a task done by its id.",
		"inputSchema": map[string]any{
			"type":       "object",
			"properties": map[string]any{"id": map[string]any{"type": "integer"}},
			"required":   []string{"id"},
		},
	},
	{
		"name":        "countdown",
		"description": "Count down from n to zero, reporting progress at each step.",
		"inputSchema": map[string]any{
			"type":       "object",
			"properties": map[string]any{"n": map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
			"required":   []string{"n"},
		},
	},
}

type callParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Meta      struct {
		ProgressToken json.RawMessage `json:"progressToken"`
	} `json:"_meta"`
}

func text(s string) map[string]any {
	return map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}
}

func toolError(s string) map[string]any {
	result := text(s)
	result["isError"] = true
	return result
}

func callTool(raw json.RawMessage) (any, *rpcError) {
	var p callParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, &rpcError{-32602, "invalid params: " + err.Error()}
	}
	var args struct {
		Title string `json:"title"`
		ID    int    `json:"id"`
		N     int    `json:"n"`
	}
	if len(p.Arguments) > 0 {
		if err := json.Unmarshal(p.Arguments, &args); err != nil {
			return toolError("bad arguments: " + err.Error()), nil
		}
	}
	switch p.Name {
	case "task_add":
		return addTask(args.Title), nil
	case "task_list":
		return text(render(loadTasks())), nil
	case "task_done":
		return markDone(args.ID), nil
	case "countdown":
		return countdown(args.N, p.Meta.ProgressToken), nil
	}
	return nil, &rpcError{-32602, "unknown tool: " + p.Name}
}

func taskKey(id int) string { return fmt.Sprintf("task/%08d", id) }

func loadTasks() []task {
	var list []task
	for _, key := range kvList("task/") {
		if value, ok := kvGet(key); ok {
			var t task
			if json.Unmarshal([]byte(value), &t) == nil {
				list = append(list, t)
			}
		}
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Done != list[j].Done {
			return !list[i].Done
		}
		return list[i].ID < list[j].ID
	})
	return list
}

func render(list []task) string {
	if len(list) == 0 {
		return "no tasks"
	}
	var b strings.Builder
	for _, t := range list {
		mark := " "
		if t.Done {
			mark = "x"
		}
		fmt.Fprintf(&b, "[%s] %d %s\n", mark, t.ID, t.Title)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func saveTask(t task) error {
	data, _ := json.Marshal(t)
	return kvPut(taskKey(t.ID), string(data))
}

func addTask(title string) any {
	title = strings.TrimSpace(title)
	if title == "" {
		return toolError("title must not be empty")
	}
	last, _ := kvGet("next_id")
	id, _ := strconv.Atoi(last)
	id++
	if err := kvPut("next_id", strconv.Itoa(id)); err != nil {
		return toolError(err.Error())
	}
	t := task{ID: id, Title: title}
	if err := saveTask(t); err != nil {
		return toolError(err.Error())
	}
	result := text(fmt.Sprintf("added task %d: %s", id, title))
	result["structuredContent"] = t
	return result
}

func markDone(id int) any {
	value, ok := kvGet(taskKey(id))
	if !ok {
		return toolError(fmt.Sprintf("no task %d", id))
	}
	var t task
	json.Unmarshal([]byte(value), &t)
	t.Done = true
	if err := saveTask(t); err != nil {
		return toolError(err.Error())
	}
	return text(fmt.Sprintf("task %d done", id))
}

func countdown(n int, token json.RawMessage) any {
	if n < 1 || n > 100 {
		return toolError("n must be between 1 and 100")
	}
	for i := 1; i <= n; i++ {
		if len(token) > 0 {
			notify("notifications/progress", map[string]any{
				"progressToken": token,
				"progress":      i,
				"total":         n,
				"message":       fmt.Sprintf("%d left", n-i),
			})
		}
	}
	return text(fmt.Sprintf("counted down from %d", n))
}
