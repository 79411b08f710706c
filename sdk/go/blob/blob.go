// Package blob keeps a stdio tenant's files in the box's blob store (docs/abi.md 2.8 and 7)
// through the smcp host imports, with the standard library only.
//
// Blobs stream: a Writer sends at most PieceBytes per host call and the blob changes only at
// Close, all at once (a Writer never closed leaves the old blob); a Reader reads the version
// current when it was opened. Each piece is one host call, so max_host_calls, fuel and the
// call's wall clock bound a tenant that streams.
//
//	w, err := blob.Create("reports/latest.md", "text/markdown")
//	if err == nil {
//		_, err = io.WriteString(w, report)
//	}
//	if err == nil {
//		err = w.Close() // the blob changes here
//	}
package blob

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"unsafe"
)

//go:wasmimport smcp blob_open
//go:noescape
func blobOpen(name unsafe.Pointer, nameLen int32, mode int32, ctype unsafe.Pointer, ctypeLen int32) int32

//go:wasmimport smcp blob_read
//go:noescape
func blobRead(handle int32, buf unsafe.Pointer, bufLen int32) int32

//go:wasmimport smcp blob_write
//go:noescape
func blobWrite(handle int32, buf unsafe.Pointer, bufLen int32) int32

//go:wasmimport smcp blob_close
func blobClose(handle int32) int32

//go:wasmimport smcp blob_delete
//go:noescape
func blobDelete(name unsafe.Pointer, nameLen int32) int32

//go:wasmimport smcp blob_stat_into
//go:noescape
func blobStatInto(name unsafe.Pointer, nameLen int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport smcp blob_list_into
//go:noescape
func blobListInto(prefix unsafe.Pointer, prefixLen int32, out unsafe.Pointer, outCap int32) int32

// PieceBytes is the most one host call moves; the box refuses more than 1 MiB.
const PieceBytes = 256 * 1024

// Info is a blob's metadata, as blob_stat and blob_list give it.
type Info struct {
	Name        string  `json:"name"`
	Size        int64   `json:"size"`
	ContentType string  `json:"contentType"`
	SHA256      string  `json:"sha256"`
	UpdatedAt   float64 `json:"updatedAt"`
}

// Error is a blob status the box returned (docs/abi.md 2.8), with the operation that got it.
// errors.Is(err, fs.ErrNotExist) holds for "no such blob".
type Error struct {
	Op     string
	Status int32
}

var statusText = map[int32]string{
	-1: "a blob quota would be exceeded (blob_max_bytes, blob_max_total_bytes or blob_max_count); nothing was kept",
	-2: "the box's store failed or the blob is damaged",
	-3: "no such blob",
	-4: "the name or content type is not allowed (names are paths of letters, digits, '.', '_', '-')",
	-5: "not an open handle, or too many handles open",
}

func (e *Error) Error() string {
	text, ok := statusText[e.Status]
	if !ok {
		text = "unknown status"
	}
	return fmt.Sprintf("blob %s: %s (%d)", e.Op, text, e.Status)
}

// Is makes errors.Is(err, fs.ErrNotExist) hold for status -3.
func (e *Error) Is(target error) bool {
	return target == fs.ErrNotExist && e.Status == -3
}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

// Writer writes a new version of one blob; Close commits it.
type Writer struct {
	handle int32
	name   string
	closed bool
}

// Create starts a new version of blob name with the given content type ("" is
// application/octet-stream). Nobody sees it until Close.
func Create(name, contentType string) (*Writer, error) {
	n, t := []byte(name), []byte(contentType)
	h := blobOpen(ptr(n), int32(len(n)), 1, ptr(t), int32(len(t)))
	if h < 0 {
		return nil, &Error{"create " + name, h}
	}
	return &Writer{handle: h, name: name}, nil
}

// Write appends p, PieceBytes per host call.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, &Error{"write " + w.name, -5}
	}
	written := 0
	for written < len(p) {
		piece := p[written:min(written+PieceBytes, len(p))]
		if rc := blobWrite(w.handle, ptr(piece), int32(len(piece))); rc < 0 {
			return written, &Error{"write " + w.name, rc}
		}
		written += len(piece)
	}
	return written, nil
}

// Close commits what was written: the blob changes now, all at once.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if rc := blobClose(w.handle); rc < 0 {
		return &Error{"close " + w.name, rc}
	}
	return nil
}

// Reader reads the version of one blob current when it was opened.
type Reader struct {
	handle int32
	name   string
	closed bool
}

// Open opens blob name for reading.
func Open(name string) (*Reader, error) {
	n := []byte(name)
	h := blobOpen(ptr(n), int32(len(n)), 0, nil, 0)
	if h < 0 {
		return nil, &Error{"open " + name, h}
	}
	return &Reader{handle: h, name: name}, nil
}

// Read reads the next bytes, at most PieceBytes per host call; io.EOF at the end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, &Error{"read " + r.name, -5}
	}
	if len(p) == 0 {
		return 0, nil
	}
	p = p[:min(len(p), PieceBytes)]
	got := blobRead(r.handle, ptr(p), int32(len(p)))
	if got < 0 {
		return 0, &Error{"read " + r.name, got}
	}
	if got == 0 {
		return 0, io.EOF
	}
	return int(got), nil
}

// Close releases the handle.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if rc := blobClose(r.handle); rc < 0 {
		return &Error{"close " + r.name, rc}
	}
	return nil
}

// WriteFile replaces blob name with data.
func WriteFile(name, contentType string, data []byte) error {
	w, err := Create(name, contentType)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err // the handle is abandoned at the call's end: the old blob stays
	}
	return w.Close()
}

// ReadFile reads blob name whole; for large blobs, Open and read in pieces instead.
func ReadFile(name string) ([]byte, error) {
	r, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// into calls a caller-buffer import, once more with a buffer of the size it asks for.
func into(op string, call func(out unsafe.Pointer, outCap int32) int32) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n := call(ptr(buf), int32(len(buf)))
		if n < 0 {
			return nil, &Error{op, n}
		}
		if int(n) <= len(buf) {
			return buf[:n], nil
		}
		buf = make([]byte, n) // the listing may have grown between the calls: ask again
	}
}

// Stat returns blob name's metadata; an error that errors.Is fs.ErrNotExist when absent.
func Stat(name string) (Info, error) {
	n := []byte(name)
	raw, err := into("stat "+name, func(out unsafe.Pointer, outCap int32) int32 {
		rc := blobStatInto(ptr(n), int32(len(n)), out, outCap)
		if rc == -1 {
			return -3 // absent: the same status as blob_open's
		}
		return rc
	})
	var info Info
	if err == nil {
		err = json.Unmarshal(raw, &info)
	}
	return info, err
}

// List returns the metadata of the blobs whose names start with prefix, sorted by name.
func List(prefix string) ([]Info, error) {
	p := []byte(prefix)
	raw, err := into("list "+prefix, func(out unsafe.Pointer, outCap int32) int32 {
		return blobListInto(ptr(p), int32(len(p)), out, outCap)
	})
	infos := []Info{}
	if err == nil {
		err = json.Unmarshal(raw, &infos)
	}
	return infos, err
}

// Delete removes blob name; it reports whether there was one.
func Delete(name string) (bool, error) {
	n := []byte(name)
	rc := blobDelete(ptr(n), int32(len(n)))
	if rc < 0 {
		return false, &Error{"delete " + name, rc}
	}
	return rc == 1, nil
}

var _ io.ReadCloser = (*Reader)(nil)
var _ io.WriteCloser = (*Writer)(nil)
