// Command stdiofaults is a hostile MCP stdio server for the box's fault tests. It is built
// the way many real servers are: one goroutine reads stdin, each request runs in its own
// goroutine, and replies are written under a lock. On a blocking stdin Go's wasip1 runtime
// would freeze every goroutine in the reader's read and answer one message late; the tests
// check it answers at once under the box's WASI.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

var (
	mu  sync.Mutex
	out = bufio.NewWriter(os.Stdout)
	// sink keeps the memory bomb's allocations reachable.
	sink [][]byte
)

func send(v any) {
	mu.Lock()
	defer mu.Unlock()
	data, _ := json.Marshal(v)
	out.Write(data)
	out.WriteByte('\n')
	out.Flush()
}

func text(id json.RawMessage, s string) {
	send(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"content": []any{map[string]any{"type": "text", "text": s}},
	}})
}

var tools = []map[string]any{}

func init() {
	for _, name := range []string{"ok", "nap", "hang", "sleep", "loop", "bomb", "panic", "garbage"} {
		tools = append(tools, map[string]any{
			"name": name, "description": "fault: " + name,
			"inputSchema": map[string]any{"type": "object"},
		})
	}
}

func handle(msg message) {
	switch msg.Method {
	case "initialize":
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{
			"protocolVersion": "2025-06-18",
			"capabilities":    map[string]any{"tools": map[string]any{}},
			"serverInfo":      map[string]any{"name": "stdiofaults", "version": "1"},
		}})
	case "tools/list":
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{"tools": tools}})
	case "tools/call":
		call(msg)
	default:
		send(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{
			"code": -32601, "message": "no such method",
		}})
	}
}

func call(msg message) {
	switch msg.Params.Name {
	case "ok":
		text(msg.ID, "still serving")
	case "nap": // a timer, then the answer
		time.Sleep(30 * time.Millisecond)
		text(msg.ID, "rested")
	case "hang": // never answers, waits for more input
	case "sleep": // never answers, waits on a timer far past any deadline
		time.Sleep(time.Hour)
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				text(msg.ID, "unreachable")
			}
		}
	case "bomb":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "panic":
		panic("boom: the tool failed")
	case "garbage":
		mu.Lock()
		fmt.Fprintln(out, "this is not JSON-RPC")
		out.Flush()
		mu.Unlock()
	}
}

func main() {
	lines := make(chan []byte)
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			lines <- append([]byte(nil), in.Bytes()...)
		}
		close(lines)
	}()
	for line := range lines {
		var msg message
		if json.Unmarshal(line, &msg) != nil || msg.ID == nil {
			continue
		}
		go handle(msg)
	}
}
