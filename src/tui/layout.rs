//! Where things go on the screen, as a function of its size: the title line, the list, the
//! details pane (beside the list from [`WIDE`] columns, under it below that, or hidden) and the
//! status line. Both the drawing and the app (to scroll and to map a click to a row) use it.

use ratatui::layout::Rect;

/// From this width on, the details pane sits beside the list; below it goes under the list,
/// so the list keeps the whole width.
pub const WIDE: u16 = 140;

/// The areas of the main screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub title: Rect,
    pub list: Rect,
    pub details: Option<Rect>,
    pub status: Rect,
}

/// The main screen's areas for a terminal of `area`, with or without the details pane, for a
/// list of `rows` rows (a short list under which the details go leaves them the room).
pub fn screen(area: Rect, details: bool, rows: usize) -> Screen {
    let title = Rect { height: 1, ..area };
    let status = Rect {
        y: area.bottom().saturating_sub(1),
        height: area.height.min(1),
        ..area
    };
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..area
    };
    if !details {
        return Screen {
            title,
            list: body,
            details: None,
            status,
        };
    }
    if area.width >= WIDE {
        let w = (area.width * 2 / 5).clamp(56, 90);
        let list = Rect {
            width: body.width - w,
            ..body
        };
        let details = Rect {
            x: list.right(),
            width: w,
            ..body
        };
        return Screen {
            title,
            list,
            details: Some(details),
            status,
        };
    }
    // Under the list; too short a terminal shows the list alone.
    if body.height < 14 {
        return Screen {
            title,
            list: body,
            details: None,
            status,
        };
    }
    let mut h = (body.height * 2 / 5).clamp(8, 16);
    // The list needs its rows, its header and its border, and a few rows at the least.
    let wanted = u16::try_from(rows + 3).unwrap_or(u16::MAX).max(8);
    if wanted < body.height - h {
        h = body.height - wanted;
    }
    let list = Rect {
        height: body.height - h,
        ..body
    };
    let details = Rect {
        y: list.bottom(),
        height: h,
        ..body
    };
    Screen {
        title,
        list,
        details: Some(details),
        status,
    }
}

/// How many connections the list shows at once (inside its border, under its header).
pub fn list_rows(list: Rect) -> usize {
    usize::from(list.height.saturating_sub(3))
}

/// The terminal row of the list's first connection.
pub fn first_row(list: Rect) -> u16 {
    list.y + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_details_go_under_the_list_below_140_columns() {
        let s = screen(Rect::new(0, 0, 120, 40), true, 100);
        assert_eq!(s.list.width, 120);
        let d = s.details.expect("details");
        assert_eq!((d.y, d.bottom()), (s.list.bottom(), 39));
        let s = screen(Rect::new(0, 0, 200, 50), true, 100);
        let d = s.details.expect("details");
        assert_eq!((d.x, d.width, s.list.width), (120, 80, 120));
        let s = screen(Rect::new(0, 0, 80, 24), true, 100);
        assert!(list_rows(s.list) >= 10, "{s:?}");
        // A short list gives the details pane the room it does not need.
        let s = screen(Rect::new(0, 0, 120, 40), true, 4);
        assert_eq!(s.list.height, 8);
        assert_eq!(s.details.map(|d| d.height), Some(30));
    }
}
