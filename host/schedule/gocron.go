package schedule

import (
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/hashicorp/go-hclog"
)

// gocronLogger adapts hclog to gocron's Logger.
type gocronLogger struct{ l hclog.Logger }

func (g gocronLogger) Debug(msg string, args ...any) { g.l.Debug(msg, args...) }
func (g gocronLogger) Error(msg string, args ...any) { g.l.Error(msg, args...) }
func (g gocronLogger) Info(msg string, args ...any)  { g.l.Debug(msg, args...) }
func (g gocronLogger) Warn(msg string, args ...any)  { g.l.Warn(msg, args...) }

// monitor feeds gocron's scheduling delay to the Observer.
type monitor struct{ sc *Scheduler }

func (m *monitor) SchedulerStarted()                          {}
func (m *monitor) SchedulerStopped()                          {}
func (m *monitor) SchedulerShutdown()                         {}
func (m *monitor) JobRegistered(gocron.Job)                   {}
func (m *monitor) JobUnregistered(gocron.Job)                 {}
func (m *monitor) JobStarted(gocron.Job)                      {}
func (m *monitor) JobRunning(gocron.Job)                      {}
func (m *monitor) JobFailed(gocron.Job, error)                {}
func (m *monitor) JobCompleted(gocron.Job)                    {}
func (m *monitor) JobExecutionTime(gocron.Job, time.Duration) {}
func (m *monitor) ConcurrencyLimitReached(string, gocron.Job) {}
func (m *monitor) JobSchedulingDelay(j gocron.Job, scheduled, actual time.Time) {
	if o := m.sc.cfg.Observer; o != nil && !scheduled.IsZero() {
		lag := actual.Sub(scheduled)
		if lag < 0 {
			lag = 0
		}
		o.ObserveLag(j.Name(), lag)
	}
}

var (
	_ gocron.Logger           = gocronLogger{}
	_ gocron.SchedulerMonitor = (*monitor)(nil)
)
