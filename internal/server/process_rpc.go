package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/sandboxd/envd/internal/rpc"

	"github.com/sandboxd/envd/internal/errs"
	pb "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/process"
	"github.com/sandboxd/envd/internal/users"
)

// processRPC adapts process.Process RPCs to the process subsystem.
type processRPC struct {
	pb.UnimplementedProcessHandler
	s *Server
}

// processTimeout parses Connect-Timeout-Ms as the process lifetime
// (PROTOCOL.md 3.3.1): absent or 0 means none, malformed is invalid.
func processTimeout(h http.Header) (time.Duration, error) {
	v := h.Get("Connect-Timeout-Ms")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || len(v) > 10 {
		return 0, errs.New(errs.Invalid, "invalid Connect-Timeout-Ms header %q", v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

func processSelector(sel *pb.ProcessSelector) (process.Selector, error) {
	switch v := sel.GetSelector().(type) {
	case *pb.ProcessSelector_Pid:
		return process.Selector{Pid: v.Pid}, nil
	case *pb.ProcessSelector_Tag:
		return process.Selector{Tag: v.Tag, ByTag: true}, nil
	}
	return process.Selector{}, errs.New(errs.Unsupported, "invalid input type")
}

func (r *processRPC) find(sel *pb.ProcessSelector) (*process.Proc, error) {
	s, err := processSelector(sel)
	if err != nil {
		return nil, err
	}
	return r.s.Process.Find(s)
}

func (r *processRPC) Start(ctx context.Context, req *rpc.Request[pb.StartRequest], stream *rpc.ServerStream[pb.StartResponse]) error {
	u := requestUser(ctx)
	if u == nil {
		return toConnect(errs.New(errs.Unauthenticated, "no user"))
	}
	timeout, err := processTimeout(req.Header())
	if err != nil {
		return toConnect(err)
	}
	m := req.Msg
	cfg := m.GetProcess()
	dir, err := users.Resolve(cfg.GetCwd(), u, r.s.Defaults.Workdir())
	if err != nil {
		return toConnect(err)
	}
	o := process.StartOptions{
		Config:    process.Config{Cmd: cfg.GetCmd(), Args: cfg.GetArgs(), Envs: cfg.GetEnvs()},
		User:      u,
		Dir:       dir,
		GlobalEnv: r.s.Defaults.Env(),
		Tag:       m.Tag,
		Stdin:     m.Stdin == nil || *m.Stdin,
		Timeout:   timeout,
		Keepalive: keepaliveInterval(req.Header()),
	}
	if cfg != nil {
		o.Config.Cwd = cfg.Cwd // as sent, absent stays absent (List)
	}
	if m.Pty != nil {
		o.PTY = &process.Size{Cols: m.Pty.GetSize().GetCols(), Rows: m.Pty.GetSize().GetRows()}
	}
	sub, err := r.s.Process.Start(o)
	if err != nil {
		return toConnect(err)
	}
	defer sub.Close()
	return pumpProcess(ctx, sub, func(ev *pb.ProcessEvent) error {
		return stream.Send(&pb.StartResponse{Event: ev})
	})
}

func (r *processRPC) Connect(ctx context.Context, req *rpc.Request[pb.ConnectRequest], stream *rpc.ServerStream[pb.ConnectResponse]) error {
	sel, err := processSelector(req.Msg.GetProcess())
	if err != nil {
		return toConnect(err)
	}
	sub, err := r.s.Process.Connect(sel, keepaliveInterval(req.Header()))
	if err != nil {
		return toConnect(err)
	}
	defer sub.Close()
	return pumpProcess(ctx, sub, func(ev *pb.ProcessEvent) error {
		return stream.Send(&pb.ConnectResponse{Event: ev})
	})
}

// pumpProcess sends start, then every event of sub until the end. It runs on the
// handler goroutine, so the handler returns only after its last send (E4).
func pumpProcess(ctx context.Context, sub *process.Sub, send func(*pb.ProcessEvent) error) error {
	start := &pb.ProcessEvent{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{Pid: uint32(sub.Pid())}}}
	if err := send(start); err != nil {
		return err
	}
	for {
		ev, err := sub.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return toConnect(err)
		}
		if err := send(processWireEvent(ev)); err != nil {
			return err
		}
		if ev.End != nil {
			return nil
		}
	}
}

func processWireEvent(ev process.Event) *pb.ProcessEvent {
	switch {
	case ev.End != nil:
		e := &pb.ProcessEvent_EndEvent{ExitCode: int32(ev.End.ExitCode), Exited: ev.End.Exited, Status: ev.End.Status}
		if ev.End.Error != "" {
			e.Error = &ev.End.Error
		}
		return &pb.ProcessEvent{Event: &pb.ProcessEvent_End{End: e}}
	case ev.Keepalive:
		return &pb.ProcessEvent{Event: &pb.ProcessEvent_Keepalive{Keepalive: &pb.ProcessEvent_KeepAlive{}}}
	}
	d := &pb.ProcessEvent_DataEvent{}
	switch ev.Stream {
	case process.Stdout:
		d.Output = &pb.ProcessEvent_DataEvent_Stdout{Stdout: ev.Data}
	case process.Stderr:
		d.Output = &pb.ProcessEvent_DataEvent_Stderr{Stderr: ev.Data}
	default:
		d.Output = &pb.ProcessEvent_DataEvent_Pty{Pty: ev.Data}
	}
	return &pb.ProcessEvent{Event: &pb.ProcessEvent_Data{Data: d}}
}

func (r *processRPC) List(context.Context, *rpc.Request[pb.ListRequest]) (*rpc.Response[pb.ListResponse], error) {
	infos := r.s.Process.List()
	out := &pb.ListResponse{Processes: make([]*pb.ProcessInfo, len(infos))}
	for i, in := range infos {
		out.Processes[i] = &pb.ProcessInfo{
			Pid: uint32(in.Pid),
			Tag: in.Tag,
			Config: &pb.ProcessConfig{Cmd: in.Config.Cmd, Args: in.Config.Args,
				Envs: in.Config.Envs, Cwd: in.Config.Cwd},
		}
	}
	return rpc.NewResponse(out), nil
}

func (r *processRPC) Update(_ context.Context, req *rpc.Request[pb.UpdateRequest]) (*rpc.Response[pb.UpdateResponse], error) {
	p, err := r.find(req.Msg.GetProcess())
	if err != nil {
		return nil, toConnect(err)
	}
	if sz := req.Msg.GetPty().GetSize(); req.Msg.Pty != nil {
		if err := p.Resize(process.Size{Cols: sz.GetCols(), Rows: sz.GetRows()}); err != nil {
			return nil, toConnect(err)
		}
	}
	return rpc.NewResponse(&pb.UpdateResponse{}), nil
}

// writeInput sends one ProcessInput to p.
func writeInput(ctx context.Context, p *process.Proc, in *pb.ProcessInput) error {
	switch v := in.GetInput().(type) {
	case *pb.ProcessInput_Stdin:
		return p.Write(ctx, false, v.Stdin)
	case *pb.ProcessInput_Pty:
		return p.Write(ctx, true, v.Pty)
	}
	return errs.New(errs.Unsupported, "invalid input type")
}

func (r *processRPC) SendInput(ctx context.Context, req *rpc.Request[pb.SendInputRequest]) (*rpc.Response[pb.SendInputResponse], error) {
	p, err := r.find(req.Msg.GetProcess())
	if err != nil {
		return nil, toConnect(err)
	}
	if err := writeInput(ctx, p, req.Msg.GetInput()); err != nil {
		return nil, toConnect(err)
	}
	return rpc.NewResponse(&pb.SendInputResponse{}), nil
}

func (r *processRPC) StreamInput(ctx context.Context, stream *rpc.ClientStream[pb.StreamInputRequest]) (*rpc.Response[pb.StreamInputResponse], error) {
	var p *process.Proc
	for stream.Receive() {
		switch ev := stream.Msg().GetEvent().(type) {
		case *pb.StreamInputRequest_Start:
			found, err := r.find(ev.Start.GetProcess())
			if err != nil {
				return nil, toConnect(err)
			}
			p = found
		case *pb.StreamInputRequest_Data:
			if p == nil {
				return nil, toConnect(errs.New(errs.Precondition, "input data before the start event selected a process"))
			}
			if err := writeInput(ctx, p, ev.Data.GetInput()); err != nil {
				return nil, toConnect(err)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return rpc.NewResponse(&pb.StreamInputResponse{}), nil
}

func (r *processRPC) SendSignal(_ context.Context, req *rpc.Request[pb.SendSignalRequest]) (*rpc.Response[pb.SendSignalResponse], error) {
	var sig syscall.Signal
	switch req.Msg.GetSignal() {
	case pb.Signal_SIGNAL_SIGKILL:
		sig = syscall.SIGKILL
	case pb.Signal_SIGNAL_SIGTERM:
		sig = syscall.SIGTERM
	default:
		return nil, toConnect(errs.New(errs.Unsupported, "invalid signal: %s", req.Msg.GetSignal()))
	}
	p, err := r.find(req.Msg.GetProcess())
	if err != nil {
		return nil, toConnect(err)
	}
	if err := p.Signal(sig); err != nil {
		return nil, toConnect(err)
	}
	return rpc.NewResponse(&pb.SendSignalResponse{}), nil
}

func (r *processRPC) CloseStdin(_ context.Context, req *rpc.Request[pb.CloseStdinRequest]) (*rpc.Response[pb.CloseStdinResponse], error) {
	p, err := r.find(req.Msg.GetProcess())
	if err != nil {
		return nil, toConnect(err)
	}
	if err := p.CloseStdin(); err != nil {
		return nil, toConnect(err)
	}
	return rpc.NewResponse(&pb.CloseStdinResponse{}), nil
}
