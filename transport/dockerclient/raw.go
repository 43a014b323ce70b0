package dockerclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// InspectRaw returns the engine's inspect document of image ref as sent
// (for info and check, which print fields Image does not hold). An unknown
// image gives ErrNotFound.
func (c *Client) InspectRaw(ctx context.Context, ref string) ([]byte, error) {
	what := "inspect image " + ref
	resp, err := c.do(ctx, http.MethodGet, "/images/"+ref+"/json", nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(what, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}
