package main

import "encoding/json"

const allTasksURI = "tasks://all"

var resources = []map[string]any{
	{
		"uri":         allTasksURI,
		"name":        "all-tasks",
		"description": "Every task, one per line, open ones first.",
		"mimeType":    "text/plain",
	},
}

var prompts = []map[string]any{
	{
		"name":        "plan_day",
		"description": "Ask for a plan of the day built from the open tasks.",
		"arguments": []any{
			map[string]any{"name": "focus", "description": "What matters most today", "required": false},
		},
	},
}

func readResource(raw json.RawMessage) (any, *rpcError) {
	var p struct {
		URI string `json:"uri"`
	}
	json.Unmarshal(raw, &p)
	if p.URI != allTasksURI {
		return nil, &rpcError{-32002, "resource not found: " + p.URI}
	}
	return map[string]any{"contents": []any{map[string]any{
		"uri": allTasksURI, "mimeType": "text/plain", "text": render(loadTasks()),
	}}}, nil
}

func getPrompt(raw json.RawMessage) (any, *rpcError) {
	var p struct {
		Name      string            `json:"name"`
		Arguments map[string]string `json:"arguments"`
	}
	json.Unmarshal(raw, &p)
	if p.Name != "plan_day" {
		return nil, &rpcError{-32602, "unknown prompt: " + p.Name}
	}
	request := "Plan my day around these tasks:\n" + render(loadTasks())
	if focus := p.Arguments["focus"]; focus != "" {
		request += "\nFocus on: " + focus
	}
	return map[string]any{
		"description": "A plan of the day",
		"messages": []any{map[string]any{
			"role": "user", "content": map[string]any{"type": "text", "text": request},
		}},
	}, nil
}
