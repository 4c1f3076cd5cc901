package blob_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/warmstore/warmstore/storage/blob"
	"github.com/warmstore/warmstore/storage/fsbackend"
)

// Writes are invisible until Commit: a reader never sees half a blob.
func Example() {
	dir, err := os.MkdirTemp("", "blob-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var be blob.Backend
	if be, err = fsbackend.New(dir, nil); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	w, _ := be.Create(ctx, "piece.data")
	w.Write([]byte("partial"))
	_, err = be.Stat(ctx, "piece.data")
	fmt.Println("before commit:", errors.Is(err, blob.ErrNotExist))
	w.Commit()
	size, _ := be.Stat(ctx, "piece.data")
	fmt.Println("after commit:", size)
	// Output:
	// before commit: true
	// after commit: 7
}
