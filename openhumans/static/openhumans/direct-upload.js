/*
 * django-open-humans: upload files straight from the browser to Open Humans' storage.
 *
 * Progressively enhances a form marked `data-openhumans-upload` (with `data-start-url`,
 * `data-complete-url`, `data-cancel-url`; optional `data-refresh`, a CSS selector of the part
 * of the page to reload once a file is uploaded). Without this script, or in a browser
 * without fetch, the form posts through Django as before.
 *
 * 1. POST start-url {filename, size, description, tags} -> {upload_id, url}
 * 2. PUT the bytes to url (a signed storage URL; no token ever reaches the page)
 * 3. POST complete-url {upload_id} -> {file_id, filename, size}
 *
 * No dependencies. Progress is shown in bytes and percent and announced to screen readers
 * every 10%.
 */
(function () {
  "use strict";

  if (!window.fetch || !window.XMLHttpRequest || !window.FormData || !document.querySelector) {
    return; // the plain form keeps working
  }

  var UNITS = ["bytes", "KB", "MB", "GB", "TB"];

  function formatBytes(n) {
    var i = 0;
    // Powers of 1024 with KB/MB labels, as Django's filesizeformat shows sizes.
    while (n >= 1024 && i < UNITS.length - 1) {
      n /= 1024;
      i += 1;
    }
    return i === 0 ? n + " bytes" : n.toFixed(1) + " " + UNITS[i];
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function UploadError(kind, message, data) {
    this.kind = kind;
    this.message = message;
    this.data = data || {};
  }

  function Uploader(form) {
    this.form = form;
    this.startUrl = form.getAttribute("data-start-url");
    this.completeUrl = form.getAttribute("data-complete-url");
    this.cancelUrl = form.getAttribute("data-cancel-url");
    this.refresh = form.getAttribute("data-refresh");
    this.fileInput = form.querySelector("input[type=file]");
    this.submit = form.querySelector("button[type=submit], input[type=submit]");
    this.current = null; // {uploadId, xhr, cancelled}
    this.buildStatus();
    var self = this;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.uploadAll();
    });
    // A tab closed mid-upload: tell the server, which deletes what arrived.
    window.addEventListener("pagehide", function () {
      self.beaconCancel();
    });
    window.addEventListener("beforeunload", function (event) {
      if (self.current) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    window.addEventListener("offline", function () {
      if (self.current && self.current.xhr) {
        self.current.offline = true;
        self.current.xhr.abort();
      }
    });
  }

  Uploader.prototype.buildStatus = function () {
    var box = el("div", "openhumans-upload-status");
    show(box, false);
    this.label = el("p", "openhumans-upload-label");
    this.label.id = "openhumans-upload-label-" + Math.random().toString(36).slice(2);
    this.bar = el("progress", "openhumans-upload-bar");
    this.bar.max = 100;
    this.bar.value = 0;
    this.bar.setAttribute("aria-labelledby", this.label.id);
    this.progress = el("p", "openhumans-upload-progress");
    this.cancelButton = el("button", "openhumans-upload-cancel button", "Cancel upload");
    this.cancelButton.type = "button";
    this.announce = el("p", "openhumans-upload-announce");
    this.announce.setAttribute("aria-live", "polite");
    this.announce.setAttribute("aria-atomic", "true");
    // Visually hidden, still read: the live region gets 10% steps, not every event.
    this.announce.style.cssText =
      "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap";
    box.appendChild(this.label);
    box.appendChild(this.bar);
    box.appendChild(this.progress);
    box.appendChild(this.cancelButton);
    this.box = box;
    this.message = el("p", "openhumans-upload-message");
    this.message.setAttribute("role", "status");
    this.message.setAttribute("aria-live", "polite");
    this.form.appendChild(box);
    this.form.appendChild(this.announce);
    this.form.appendChild(this.message);
    var self = this;
    this.cancelButton.addEventListener("click", function () {
      self.cancel();
    });
  };

  Uploader.prototype.say = function (text, kind) {
    this.message.textContent = text;
    this.message.setAttribute("data-kind", kind || "info");
    this.message.setAttribute("role", kind === "error" ? "alert" : "status");
  };

  Uploader.prototype.csrfToken = function () {
    var input = this.form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  };

  Uploader.prototype.field = function (name) {
    var input = this.form.querySelector("[name=" + name + "]");
    return input ? input.value : "";
  };

  // Both the attribute and the style: a site's CSS may give buttons a display of their own.
  function show(node, on) {
    node.hidden = !on;
    node.style.display = on ? "" : "none";
  }

  Uploader.prototype.busy = function (on) {
    if (this.submit) this.submit.disabled = on;
    if (this.fileInput) this.fileInput.disabled = on;
    this.form.setAttribute("aria-busy", on ? "true" : "false");
    show(this.box, on);
  };

  Uploader.prototype.showProgress = function (name, loaded, total) {
    var percent = total ? Math.floor((loaded / total) * 100) : 100;
    this.bar.value = percent;
    this.bar.setAttribute("data-percent", String(percent));
    this.progress.textContent =
      formatBytes(loaded) + " of " + formatBytes(total) + " (" + percent + "%)";
    var step = Math.floor(percent / 10) * 10;
    if (step !== this.announced) {
      this.announced = step;
      this.announce.textContent = "Uploading " + name + ": " + step + "%";
    }
  };

  Uploader.prototype.post = function (url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken() },
      body: JSON.stringify(body),
    }).then(
      function (response) {
        return response
          .json()
          .catch(function () {
            return { error: "bad_answer", message: "The server answered " + response.status + "." };
          })
          .then(function (data) {
            if (!response.ok) throw new UploadError(data.error || "server", data.message, data);
            return data;
          });
      },
      function () {
        throw new UploadError("connection", null);
      }
    );
  };

  Uploader.prototype.uploadAll = function () {
    if (this.current) return;
    var files = this.fileInput && this.fileInput.files ? Array.prototype.slice.call(this.fileInput.files) : [];
    if (!files.length) {
      this.say("Choose a file to upload.", "error");
      return;
    }
    var self = this;
    var done = [];
    var chain = Promise.resolve();
    files.forEach(function (file) {
      chain = chain.then(function () {
        return self.uploadOne(file).then(function (result) {
          done.push(result);
        });
      });
    });
    this.busy(true);
    var finish = function (text, kind) {
      // Announced once the list shows the new file and the form takes the next one.
      self.current = null;
      self.busy(false);
      self.say(text, kind);
    };
    chain.then(
      function () {
        self.form.reset();
        var names = done.map(function (r) {
          return r.filename + " (" + formatBytes(r.size) + ")";
        });
        return self.refreshPage().then(function () {
          finish("Uploaded " + names.join(", ") + ".", "success");
        });
      },
      function (err) {
        return (done.length ? self.refreshPage() : Promise.resolve()).then(function () {
          finish(self.explain(err), err.kind === "cancelled" ? "info" : "error");
        });
      }
    );
  };

  Uploader.prototype.explain = function (err) {
    var name = err.filename || "the file";
    switch (err.kind) {
      case "cancelled":
        return "Upload of " + name + " cancelled. Nothing was saved.";
      case "connection":
        return "The connection was lost while uploading " + name +
          ". Nothing was saved; check your connection and try again.";
      case "too_large":
        return name + " is too large (" + formatBytes(err.size) + "); files up to " +
          formatBytes(err.data.limit) + " can be uploaded.";
      case "expired":
        return "The upload link for " + name + " expired twice. Reload the page and try again.";
      case "put_failed":
        return "Storage refused " + name + " (HTTP " + err.status + "). Nothing was saved; try again.";
      default:
        return err.message || "The upload of " + name + " failed. Try again.";
    }
  };

  Uploader.prototype.uploadOne = function (file) {
    var self = this;
    var state = { file: file, uploadId: null, xhr: null, cancelled: false, offline: false };
    this.current = state;
    this.announced = -1;
    this.label.textContent = "Uploading " + file.name;
    show(this.cancelButton, true);
    this.say("", "info");
    this.showProgress(file.name, 0, file.size);
    var body = {
      filename: file.name,
      size: file.size,
      description: this.field("description"),
      tags: this.field("tags"),
    };
    var start = function () {
      return self.post(self.startUrl, body).then(function (answer) {
        state.uploadId = answer.upload_id;
        if (state.cancelled) throw new UploadError("cancelled");
        return answer;
      });
    };
    var attempt = function (answer, retried) {
      return self.put(state, answer.url).then(function () {
        show(self.cancelButton, false); // the bytes are there: completing is quick
      }, function (err) {
        if (err.kind === "expired" && !retried) {
          // The signed URL expired: give it up and ask for a new one, once.
          self.say("The upload link expired; getting a new one…", "info");
          return self.forget(state).then(start).then(function (again) {
            return attempt(again, true);
          });
        }
        throw err;
      });
    };
    return start()
      .then(function (answer) {
        return attempt(answer, false);
      })
      .then(function () {
        if (state.cancelled) throw new UploadError("cancelled");
        return self.post(self.completeUrl, { upload_id: state.uploadId });
      })
      .then(function (result) {
        state.uploadId = null;
        self.showProgress(file.name, file.size, file.size);
        self.announce.textContent = "Uploaded " + file.name;
        return result;
      })
      .catch(function (err) {
        if (!(err instanceof UploadError)) err = new UploadError("other", String(err));
        if (state.cancelled) err = new UploadError("cancelled");
        err.filename = file.name;
        err.size = file.size;
        // Whatever was started is given up on the server (which deletes what arrived).
        return self.forget(state).then(function () {
          throw err;
        });
      });
  };

  Uploader.prototype.put = function (state, url) {
    var self = this;
    var file = state.file;
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      state.xhr = xhr;
      xhr.open("PUT", url);
      xhr.upload.addEventListener("progress", function (event) {
        self.showProgress(file.name, event.loaded, event.lengthComputable ? event.total : file.size);
      });
      xhr.addEventListener("load", function () {
        state.xhr = null;
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve();
        } else if (xhr.status === 403 && /expired/i.test(xhr.responseText || "")) {
          reject(new UploadError("expired"));
        } else {
          var err = new UploadError("put_failed");
          err.status = xhr.status;
          reject(err);
        }
      });
      xhr.addEventListener("error", function () {
        state.xhr = null;
        reject(new UploadError("connection"));
      });
      xhr.addEventListener("abort", function () {
        state.xhr = null;
        reject(new UploadError(state.offline ? "connection" : "cancelled"));
      });
      // A Blob without a type: the URL is signed for an empty Content-Type (spec §2.6).
      xhr.send(file.slice(0, file.size));
    });
  };

  Uploader.prototype.cancel = function () {
    var state = this.current;
    if (!state) return;
    state.cancelled = true;
    this.say("Cancelling…", "info");
    if (state.xhr) state.xhr.abort();
  };

  Uploader.prototype.forget = function (state) {
    var uploadId = state.uploadId;
    state.uploadId = null;
    if (!uploadId) return Promise.resolve();
    return this.post(this.cancelUrl, { upload_id: uploadId }).catch(function () {
      // The server's cleanup finds it later (openhumans_clean_uploads).
    });
  };

  Uploader.prototype.beaconCancel = function () {
    var state = this.current;
    if (!state || !state.uploadId || !navigator.sendBeacon) return;
    var data = new FormData();
    data.append("upload_id", state.uploadId);
    data.append("csrfmiddlewaretoken", this.csrfToken());
    navigator.sendBeacon(this.cancelUrl, data);
  };

  Uploader.prototype.refreshPage = function () {
    var selector = this.refresh;
    if (!selector || !window.DOMParser) return Promise.resolve();
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(selector);
        var old = document.querySelector(selector);
        if (fresh && old) old.parentNode.replaceChild(document.importNode(fresh, true), old);
      })
      .catch(function () {
        // The list is stale until the next page load; the upload itself succeeded.
      });
  };

  function enhance() {
    var forms = document.querySelectorAll("form[data-openhumans-upload]");
    for (var i = 0; i < forms.length; i += 1) {
      var form = forms[i];
      var ready =
        form.getAttribute("data-start-url") &&
        form.getAttribute("data-complete-url") &&
        form.getAttribute("data-cancel-url") &&
        form.querySelector("input[type=file]");
      // A form missing a URL or a file input is left to post as it is.
      if (ready && !form.openhumansUploader) form.openhumansUploader = new Uploader(form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhance);
  } else {
    enhance();
  }
})();
