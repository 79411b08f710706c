// Command tasks is an MCP server on the stdio transport, written with the Go standard library
// only, that smcp-box hosts as a kind = "stdio" tenant: a small task list kept in the box's kv
// store. Build: GOOS=wasip1 GOARCH=wasm go build (or `smcp-box build tenants/tasks`).
//
// It reads one JSON-RPC message per line on stdin and writes one per line on stdout, handling
// each message before reading the next, as the stdio transport expects. Logs go to stderr.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// message is any JSON-RPC 2.0 message the server reads.
type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

var out = bufio.NewWriter(os.Stdout)

// send writes one message as one line and flushes it: a reply sitting in a buffer while the
// server waits for its next request would never reach the client.
func send(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tasks: cannot encode a message:", err)
		return
	}
	out.Write(data)
	out.WriteByte('\n')
	out.Flush()
}

func reply(id json.RawMessage, result any) {
	send(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func fail(id json.RawMessage, code int, text string) {
	send(map[string]any{"jsonrpc": "2.0", "id": id, "error": rpcError{code, text}})
}

func notify(method string, params any) {
	send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for in.Scan() {
		var msg message
		if err := json.Unmarshal(in.Bytes(), &msg); err != nil {
			fail(json.RawMessage("null"), -32700, "parse error: "+err.Error())
			continue
		}
		if msg.ID == nil {
			continue // notifications: nothing to answer
		}
		result, err := dispatch(msg)
		if err != nil {
			fail(msg.ID, err.Code, err.Message)
		} else {
			reply(msg.ID, result)
		}
	}
}

func dispatch(msg message) (any, *rpcError) {
	switch msg.Method {
	case "initialize":
		return initialize(msg.Params), nil
	case "ping":
		return map[string]any{}, nil
	case "tools/list":
		return map[string]any{"tools": tools}, nil
	case "tools/call":
		return callTool(msg.Params)
	case "resources/list":
		return map[string]any{"resources": resources}, nil
	case "resources/templates/list":
		return map[string]any{"resourceTemplates": []any{}}, nil
	case "resources/read":
		return readResource(msg.Params)
	case "prompts/list":
		return map[string]any{"prompts": prompts}, nil
	case "prompts/get":
		return getPrompt(msg.Params)
	}
	return nil, &rpcError{-32601, "method not found: " + msg.Method}
}

func initialize(params json.RawMessage) any {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	json.Unmarshal(params, &p)
	version := p.ProtocolVersion
	if version == "" {
		version = "2025-06-18"
	}
	return map[string]any{
		"protocolVersion": version,
		"capabilities": map[string]any{
			"tools":     map[string]any{},
			"resources": map[string]any{},
			"prompts":   map[string]any{},
		},
		"serverInfo":   map[string]any{"name": "tasks", "version": "1.0.0"},
		"instructions": "A task list: add tasks, list them, mark them done.",
	}
}
