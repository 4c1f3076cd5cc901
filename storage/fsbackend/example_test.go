package fsbackend_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/warmstore/warmstore/storage/fsbackend"
)

func Example() {
	dir, err := os.MkdirTemp("", "fsbackend-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	be, err := fsbackend.New(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	w, err := be.Create(ctx, "greeting.data")
	if err != nil {
		log.Fatal(err)
	}
	w.Write([]byte("hello, durable world"))
	if err := w.Commit(); err != nil { // fsync, rename, fsync the directory
		log.Fatal(err)
	}
	r, err := be.Open(ctx, "greeting.data")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 7)
	r.ReadAt(buf, 7)
	fmt.Println(r.Size(), string(buf))
	// Output: 20 durable
}
