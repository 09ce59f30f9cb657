package keyboardlm.demo;

import android.app.job.JobInfo;
import android.app.job.JobParameters;
import android.app.job.JobScheduler;
import android.app.job.JobService;
import android.content.ComponentName;
import android.content.Context;
import android.content.SharedPreferences;
import android.os.BatteryManager;
import android.util.Log;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import keyboardlm.core.NightlyAdaptation;
import keyboardlm.core.TrainingSchedule;

/**
 * The nightly adaptation (docs/engine.md §18.5) as a JobScheduler job: periodic, run only while
 * the device is idle and charging. A thin adapter: NightlyAdaptation (core/) decides, trains with
 * LiteRtTrainer on a background thread and writes the adapter; this class hands it the phone's
 * state, records what the report says (the last run's time, the committed text's restarted word
 * count) and tells an open keyboard to reload its model after a new adapter.
 */
public final class AdaptJobService extends JobService {
    static final int JOB_ID = 1;
    /** Twice a day at most; TrainingSchedule keeps runs 20 h apart. */
    static final long PERIOD_MILLIS = TimeUnit.HOURS.toMillis(12);
    private static final String PREFERENCES = "adaptation";
    private static final String LAST_RUN = "last_run_millis";

    private volatile NightlyAdaptation step;
    private final AtomicBoolean stopped = new AtomicBoolean();

    /** Schedules the job unless it is already (scheduling it again would restart its period). */
    static void schedule(Context context) {
        JobScheduler scheduler = context.getSystemService(JobScheduler.class);
        if (scheduler == null || scheduler.getPendingJob(JOB_ID) != null) return;
        JobInfo job = new JobInfo.Builder(JOB_ID, new ComponentName(context, AdaptJobService.class))
                .setRequiresCharging(true)
                .setRequiresDeviceIdle(true)
                .setPeriodic(PERIOD_MILLIS)
                .build();
        if (scheduler.schedule(job) != JobScheduler.RESULT_SUCCESS) Log.w(Sessions.TAG, "the nightly adaptation was not scheduled");
    }

    @Override
    public boolean onStartJob(JobParameters params) {
        Context app = getApplicationContext();
        NightlyAdaptation current = new NightlyAdaptation(Sessions.adapterFile(app), LiteRtTrainer::new);
        step = current;
        stopped.set(false);
        Thread thread = new Thread(() -> {
            try {
                adapt(app, current);
            } catch (RuntimeException e) {  // never take the keyboard's process down
                Log.w(Sessions.TAG, "nightly adaptation: " + e);
            } finally {
                if (!stopped.get()) jobFinished(params, false);
            }
        }, "keyboard-adapt");
        thread.setPriority(Thread.MIN_PRIORITY);
        thread.start();
        return true;  // working on: jobFinished says when it is done
    }

    @Override
    public boolean onStopJob(JobParameters params) {
        stopped.set(true);
        NightlyAdaptation current = step;
        if (current != null) current.stop();  // ends at its next trainer call; nothing is written or counted
        return true;  // it counted for nothing: again at the next idle window
    }

    /** One step, on the job's thread; persists what the report says. */
    private static void adapt(Context app, NightlyAdaptation step) {
        SharedPreferences preferences = app.getSharedPreferences(PREFERENCES, Context.MODE_PRIVATE);
        BatteryManager battery = app.getSystemService(BatteryManager.class);
        NightlyAdaptation.Report report = step.run(Sessions.files(app), Sessions.committed(app), Sessions.keyboardOpen(),
                battery != null && battery.isCharging(), System.currentTimeMillis(),
                preferences.getLong(LAST_RUN, TrainingSchedule.NEVER));
        boolean fault = report.status == NightlyAdaptation.Status.FAILED || report.status == NightlyAdaptation.Status.CANNOT_START;
        if (fault) Log.w(Sessions.TAG, "nightly adaptation: " + report);
        else Log.i(Sessions.TAG, "nightly adaptation: " + report);
        if (report.ran()) {
            preferences.edit().putLong(LAST_RUN, report.lastRunMillis).apply();
            Sessions.saveCommitted(app);
        }
        if (report.written()) Sessions.adapterWritten();  // the next field reopens the model with it
    }
}
