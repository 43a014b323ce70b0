package dockerclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// emptyAuth is X-Registry-Auth for a registry that asks for no credentials:
// base64 of "{}".
const emptyAuth = "e30="

// Tag gives image ref (name:tag or an id) the extra name repo:tag
// (POST /images/{ref}/tag). An unknown image gives ErrNotFound.
func (c *Client) Tag(ctx context.Context, ref, repo, tag string) error {
	q := url.Values{"repo": {repo}, "tag": {tag}}
	resp, err := c.do(ctx, http.MethodPost, "/images/"+ref+"/tag?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return answerError("tag image "+ref+" as "+repo+":"+tag, resp)
	}
	return nil
}

// Untag removes the name ref from its image and nothing else
// (DELETE /images/{ref}?noprune=true): the image keeps its other names and
// its layers. A name already gone is not an error.
func (c *Client) Untag(ctx context.Context, ref string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/images/"+ref+"?noprune=true", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return answerError("untag image "+ref, resp)
	}
	return nil
}

// Push asks the engine to push image ref (REGISTRY/NAME:TAG) to its
// registry without credentials (X-Registry-Auth: e30=), and reads the
// engine's JSON-lines answer to its end: the push is over when Push returns.
// A line with an error key is a failure carrying the engine's message.
// status, when not nil, is called with each line's status text.
func (c *Client) Push(ctx context.Context, ref string, status func(string)) error {
	what := "push image " + ref
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/"+ref+"/push", nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("X-Registry-Auth", emptyAuth)
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(what, resp)
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var line struct {
			Status      string
			Error       *string
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
		}
		err := dec.Decode(&line)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: read answer: %w", what, err)
		}
		if line.Error != nil {
			msg := *line.Error
			if msg == "" && line.ErrorDetail != nil {
				msg = line.ErrorDetail.Message
			}
			return fmt.Errorf("%s: %w: %s", what, ErrPush, strings.TrimSpace(msg))
		}
		if status != nil && line.Status != "" {
			status(line.Status)
		}
	}
}
